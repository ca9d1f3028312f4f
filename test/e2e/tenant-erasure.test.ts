import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ErasureReport } from '../../lib/core/erasure.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

const TENANTS = ['acme', 'globex'] as const;
type Tenant = (typeof TENANTS)[number];

/**
 * `DELETE /v1/tenants/{tenant}/data` on the local platform, through its HTTP API and the CLI:
 * what one tenant's admin erases, what the others get, and that another tenant's data is untouched.
 */
describe('erasing a tenant on the local platform', () => {
  let server: RunningServer;
  const repos: Partial<Record<Tenant, string>> = {};
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    const dir = tempDir('autodev-erase-');
    for (const tenant of TENANTS) {
      mkdirSync(join(dir, tenant));
      repos[tenant] = makeRemote(join(dir, tenant));
    }
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_EXECUTOR: '0',
        // no hold: every entry of the tenant before the erasure goes (the contract tests cover the hold)
        AUTODEV_AUDIT_HOLD_DAYS: '0',
        AUTODEV_LOCAL_REPO_ROOTS: `acme=${join(dir, 'acme')};globex=${join(dir, 'globex')}`,
      }),
    );
    const key = readSigningKey(join(server.env.AUTODEV_HOME as string, 'signing-key'));
    for (const tenant of TENANTS) {
      for (const role of ['admin', 'operator'] as const) {
        tokens[`${tenant}/${role}`] = await signLocalToken(key, {
          tenant,
          role,
          subject: `${role}-1`,
          ttl: '15m',
        });
      }
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  const call = async (tenant: Tenant, path: string, method = 'GET', body?: unknown, role = 'admin') => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens[`${tenant}/${role}`]}`,
        ...(body === undefined
          ? {}
          : { 'content-type': 'application/json', 'idempotency-key': `k-${Math.random()}` }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json: json as Record<string, unknown>, text };
  };

  /** Everything of the tenant the API shows: ids of tasks, schedules and audit entries, and log texts. */
  const snapshot = async (tenant: Tenant) => {
    const tasks = (await call(tenant, '/v1/tasks?limit=500')).json.items as { id: string }[];
    const logs = await Promise.all(
      tasks.map(async (t) => (await call(tenant, `/v1/tasks/${t.id}/logs`)).text),
    );
    const schedules = (await call(tenant, '/v1/schedules')).json.items as { id: string }[];
    const audit = (await call(tenant, '/v1/audit?limit=500')).json.items as { id: string }[];
    return {
      tasks: tasks.map((t) => t.id),
      logs,
      schedules: schedules.map((s) => s.id),
      audit: audit.map((e) => e.id),
    };
  };

  /** Two tasks (then cancelled, so finished), a schedule, and refusals in the tenant's audit trail. */
  const seed = async (tenant: Tenant) => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const created = await call(tenant, '/v1/tasks', 'POST', {
        repo: repos[tenant],
        prompt: `${tenant} task ${i}`,
      });
      expect(created.status).toBe(201);
      ids.push(created.json.id as string);
    }
    const schedule = await call(tenant, '/v1/schedules', 'POST', {
      name: 'nightly',
      schedule: 'rate(1 day)',
      task: { repo: repos[tenant], prompt: 'nightly' },
    });
    expect(schedule.status).toBe(201);
    expect((await call(tenant, '/v1/tasks/tnothere00000000000000')).status).toBe(404);
    return ids;
  };

  it("erases the tenant's data for its admin only, after its tasks finished, and leaves the other tenant's alone", async () => {
    // Arrange
    const acmeTasks = await seed('acme');
    await seed('globex');
    const globexBefore = await snapshot('globex');
    const acmeBefore = await snapshot('acme');
    expect(acmeBefore.tasks).toHaveLength(2);

    // Act + Assert: another tenant's admin: 404, as any other tenant's id; the tenant's operator: 403
    const foreign = await call('globex', '/v1/tenants/acme/data', 'DELETE');
    expect(foreign.status).toBe(404);
    expect(foreign.json).toMatchObject({ error: { code: 'not_found' } });
    const operator = await call('acme', '/v1/tenants/acme/data', 'DELETE', undefined, 'operator');
    expect(operator.status).toBe(403);
    // tasks not finished: 409, nothing erased
    const busy = await call('acme', '/v1/tenants/acme/data', 'DELETE');
    expect(busy.status).toBe(409);
    expect(busy.json).toMatchObject({ error: { code: 'tasks_not_finished', details: { queued: 2 } } });
    expect((await snapshot('acme')).tasks).toEqual(acmeBefore.tasks);

    for (const id of acmeTasks)
      expect((await call('acme', `/v1/tasks/${id}/cancel`, 'POST')).status).toBe(202);
    const auditBefore = (await snapshot('acme')).audit.length;
    const erased = await call('acme', '/v1/tenants/acme/data', 'DELETE');

    // Assert
    expect(erased.status).toBe(200);
    const report = erased.json as unknown as ErasureReport;
    expect(report.tenant).toBe('acme');
    expect(report.erased).toEqual({
      tasks: 2,
      // the line the cancellation wrote to each task's log, if any
      logLines: report.erased.logLines,
      idempotencyKeys: 2,
      branches: 0,
      schedules: 1,
      // no agent ran (no executor): no model spend was counted
      spendCounters: 0,
      auditEntries: auditBefore,
    });
    const after = await snapshot('acme');
    expect(after.tasks).toEqual([]);
    expect(after.schedules).toEqual([]);
    // the erasure itself is audited, after the erasure: the only entry left
    const trail = (await call('acme', '/v1/audit')).json.items as {
      action: string;
      status: number;
      target: string;
    }[];
    expect(trail).toEqual([expect.objectContaining({ action: 'tenant.erase', status: 200, target: 'acme' })]);
    for (const id of acmeTasks) expect((await call('acme', `/v1/tasks/${id}`)).status).toBe(404);
    // the other tenant: every task, log, schedule and audit entry still there (plus its refused attempt)
    const globexAfter = await snapshot('globex');
    expect(globexAfter.tasks).toEqual(globexBefore.tasks);
    expect(globexAfter.logs).toEqual(globexBefore.logs);
    expect(globexAfter.schedules).toEqual(globexBefore.schedules);
    expect(globexAfter.audit.slice(-globexBefore.audit.length)).toEqual(globexBefore.audit);
    const globexTrail = (await call('globex', '/v1/audit?action=tenant.erase')).json.items;
    expect(globexTrail).toEqual([
      expect.objectContaining({ status: 404, outcome: 'not_found', target: 'acme' }),
    ]);
  });

  it('erases through `autodev tenants erase` with a token minted from the local key', async () => {
    const created = await call('acme', '/v1/tasks', 'POST', { repo: repos.acme, prompt: 'one more' });
    const id = created.json.id as string;
    expect((await call('acme', `/v1/tasks/${id}/cancel`, 'POST')).status).toBe(202);
    const env = { ...server.env, AUTODEV_TOKEN: '' };
    const out = await cli(['tenants', 'erase', 'acme', '--json'], env);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({
      tenant: 'acme',
      erased: { tasks: 1, idempotencyKeys: 1 },
    });
    await until(async () => (await call('acme', `/v1/tasks/${id}`)).status === 404, 5000, 'the task gone');
    expect((await snapshot('globex')).tasks).toHaveLength(2);
  });
});
