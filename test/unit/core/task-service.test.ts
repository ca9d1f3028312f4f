import { describe, expect, it } from '@jest/globals';
import type { Principal } from '../../../lib/core/access.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from '../../../lib/core/errors.js';
import { checkRepo, STRICT_REPO_POLICY } from '../../../lib/core/repo-policy.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { hashBody, TaskService } from '../../../lib/core/tasks.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';

function setup(localRoots: Record<string, string[]> = { acme: ['/srv/git'] }) {
  const ready: string[] = [];
  const cancels: string[] = [];
  const store = new SqliteTaskStore(':memory:');
  const service = new TaskService({
    store,
    notifier: {
      taskReady: async (t: Task) => {
        ready.push(t.id);
      },
      cancelRequested: async (t: Task) => {
        cancels.push(t.id);
      },
    },
    roles: BUILT_IN_ROLES,
    knownProviders: ['claude', 'codex'],
    repoPolicy: { allowedHosts: [], localRoots },
  });
  return { store, service, ready, cancels };
}
const acme: Principal = { tenant: 'acme', role: 'submitter', subject: 'ann' };
const body = { repo: 'https://github.com/acme/app.git', prompt: 'Fix the bug' };

describe('TaskService', () => {
  it('queues a valid task with defaults and tells the notifier', async () => {
    const { service, ready } = setup();
    const { task, created } = await service.submit(acme, body);
    expect(created).toBe(true);
    expect(task).toMatchObject({
      status: 'queued',
      tenant: 'acme',
      role: 'backend',
      priority: 'normal',
      version: 0,
      createdBy: 'ann',
    });
    expect(ready).toEqual([task.id]);
  });

  it('refuses what a viewer may not do', async () => {
    const { service } = setup();
    await expect(service.submit({ ...acme, role: 'viewer' }, body)).rejects.toBeInstanceOf(ForbiddenError);
  });

  it('refuses local paths where the deployment does not allow them', async () => {
    const { service } = setup({});
    await expect(service.submit(acme, { ...body, repo: '/srv/git/app.git' })).rejects.toThrow(
      /not accepted for this tenant/,
    );
    expect(() => checkRepo('git@github.com:acme/app.git', 'acme', STRICT_REPO_POLICY)).not.toThrow();
    expect(() => checkRepo('ftp://x', 'acme', STRICT_REPO_POLICY)).toThrow(ValidationError);
  });

  it("accepts local paths under the tenant's own directories only", async () => {
    const { service } = setup({ acme: ['/srv/git'] });
    await expect(service.submit(acme, { ...body, repo: '/srv/git/app.git' })).resolves.toMatchObject({
      created: true,
    });
    await expect(
      service.submit({ ...acme, tenant: 'globex' }, { ...body, repo: '/srv/git/app.git' }),
    ).rejects.toThrow(/not accepted for this tenant/);
    await expect(service.submit(acme, { ...body, repo: '/srv/git/../../etc/passwd' })).rejects.toThrow(
      /outside the directories/,
    );
  });

  it('refuses prompts over the limit with 413', async () => {
    const { service } = setup();
    await expect(service.submit(acme, { ...body, prompt: 'x'.repeat(100_001) })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
  });

  it('blocks a task on unfinished dependencies and refuses unknown ones', async () => {
    const { service, ready } = setup();
    const dep = (await service.submit(acme, body)).task;
    const after = (await service.submit(acme, { ...body, dependsOn: [dep.id] })).task;
    expect(after.status).toBe('blocked');
    expect(ready).toEqual([dep.id]);
    await expect(service.submit(acme, { ...body, dependsOn: ['tmissing'] })).rejects.toThrow(
      /does not exist/,
    );
  });

  it('cancels a queued task at once and marks a running one', async () => {
    const { service, store, cancels } = setup();
    const queued = (await service.submit(acme, body)).task;
    expect((await service.cancel(acme, queued.id)).status).toBe('cancelled');
    await expect(service.cancel(acme, queued.id)).rejects.toBeInstanceOf(ConflictError);
    const other = (await service.submit(acme, body)).task;
    await store.put({ ...other, status: 'running', version: 1 }, 0);
    const marked = await service.cancel(acme, other.id);
    expect(marked).toMatchObject({ status: 'running', cancelRequested: true });
    expect(cancels).toEqual([other.id]);
  });

  it("hides other tenants' tasks", async () => {
    const { service } = setup();
    const t = (await service.submit(acme, body)).task;
    await expect(service.get({ tenant: 'globex', role: 'admin', subject: 'x' }, t.id)).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('hashes bodies independently of key order', () => {
    expect(hashBody({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(hashBody({ b: [1, { d: 3, c: 2 }], a: 1 }));
    expect(hashBody({ a: 1 })).not.toBe(hashBody({ a: 2 }));
  });
});
