import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../lib/core/errors.js';
import type { AccessRole } from '../../lib/core/schemas.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import { loadLocalConfig } from '../../lib/local/config.js';
import {
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

/** `priority: "high"` jumps the tenant's queue: only the roles allowed to may ask for it. */
describe('who may ask for high priority', () => {
  const dir = tempDir('autodev-priority-');
  let repo: string;
  const servers: Record<'default' | 'admin only', RunningServer> = {} as never;

  beforeAll(async () => {
    mkdirSync(join(dir, 'acme'));
    repo = makeRemote(join(dir, 'acme'));
    const env = (home: string, extra: Record<string, string> = {}) =>
      platformEnv(join(dir, home), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_LOCAL_REPO_ROOTS: `acme=${join(dir, 'acme')}`,
        ...extra,
      });
    servers.default = await startServer(env('home-default'));
    servers['admin only'] = await startServer(env('home-admin', { AUTODEV_HIGH_PRIORITY_ROLES: 'admin' }));
  });

  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  });

  const tokenFor = (which: keyof typeof servers, role: AccessRole) =>
    signLocalToken(readSigningKey(join(servers[which].env.AUTODEV_HOME as string, 'signing-key')), {
      tenant: 'acme',
      role,
      subject: `${role}-1`,
      ttl: '5m',
    });
  const post = async (which: keyof typeof servers, role: AccessRole, path: string, body: unknown) => {
    const res = await fetch(`${servers[which].url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await tokenFor(which, role)}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const task = (priority: string) => ({ repo, prompt: 'x', priority });
  const schedule = (priority: string) => ({
    name: `p${Date.now()}`,
    schedule: 'rate(1 hour)',
    task: task(priority),
  });

  it('refuses a submitter asking for high (403 naming the reason), and makes no task', async () => {
    // Act
    const refused = await post('default', 'submitter', '/v1/tasks', task('high'));
    const list = await fetch(`${servers.default.url}/v1/tasks`, {
      headers: { authorization: `Bearer ${await tokenFor('default', 'viewer')}` },
    });
    // Assert
    expect(refused.status).toBe(403);
    expect(refused.body.error).toEqual({
      code: 'forbidden',
      message: expect.stringMatching(/"submitter" may not ask for priority "high".*admin, operator/),
    });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
  });

  it('lets a submitter ask for normal and low, and operators and admins for high', async () => {
    expect((await post('default', 'submitter', '/v1/tasks', task('normal'))).status).toBe(201);
    expect((await post('default', 'submitter', '/v1/tasks', task('low'))).status).toBe(201);
    for (const role of ['operator', 'admin'] as const) {
      const made = await post('default', role, '/v1/tasks', task('high'));
      expect(made).toMatchObject({ status: 201, body: { priority: 'high' } });
    }
  });

  it('follows AUTODEV_HIGH_PRIORITY_ROLES, for tasks and for the tasks of schedules', async () => {
    // Act
    const operatorTask = await post('admin only', 'operator', '/v1/tasks', task('high'));
    const operatorSchedule = await post('admin only', 'operator', '/v1/schedules', schedule('high'));
    const operatorNormal = await post('admin only', 'operator', '/v1/schedules', schedule('normal'));
    const adminTask = await post('admin only', 'admin', '/v1/tasks', task('high'));
    const adminSchedule = await post('admin only', 'admin', '/v1/schedules', schedule('high'));
    // Assert
    expect(operatorTask.status).toBe(403);
    expect(operatorSchedule.status).toBe(403);
    expect(String((operatorSchedule.body.error as { message: string }).message)).toMatch(
      /task\.priority "high"/,
    );
    expect(operatorNormal.status).toBe(201);
    expect(adminTask.status).toBe(201);
    expect(adminSchedule.status).toBe(201);
  });

  it('refuses to start with a role that does not exist in AUTODEV_HIGH_PRIORITY_ROLES', () => {
    expect(() =>
      loadLocalConfig({ AUTODEV_HOME: join(dir, 'home-bad'), AUTODEV_HIGH_PRIORITY_ROLES: 'admin,root' }),
    ).toThrow(ConfigError);
    expect(loadLocalConfig({ AUTODEV_HOME: join(dir, 'home-bad') }).highPriorityRoles).toEqual([
      'admin',
      'operator',
    ]);
  });
});
