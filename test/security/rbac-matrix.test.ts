import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AccessRole } from '../../lib/core/schemas.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import {
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

type Caller = AccessRole | 'no token';
const CALLERS: Caller[] = ['admin', 'operator', 'submitter', 'viewer', 'no token'];

/**
 * Every route the local API answers × every access role → the status README.md documents
 * ("Access roles"). A route that needs something to act on makes it fresh, as an admin, first.
 */
describe('the RBAC matrix of the local API', () => {
  let server: RunningServer;
  const repos: Record<string, string> = {};
  const tokens: Record<string, string> = {};
  const PROMPT = 'secret-plan-of-acme';

  beforeAll(async () => {
    const dir = tempDir('autodev-rbac-');
    for (const tenant of ['acme', 'globex']) {
      mkdirSync(join(dir, tenant));
      repos[tenant] = makeRemote(join(dir, tenant));
    }
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_GITHUB_WEBHOOK_SECRET: 'rbac-webhook-secret',
        AUTODEV_LOCAL_REPO_ROOTS: `acme=${join(dir, 'acme')};globex=${join(dir, 'globex')}`,
      }),
    );
    const key = readSigningKey(join(server.env.AUTODEV_HOME as string, 'signing-key'));
    // initech has no task: its data can be erased at any time
    for (const tenant of ['acme', 'globex', 'initech']) {
      for (const role of ['admin', 'operator', 'submitter', 'viewer'] as const) {
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

  const call = (
    path: string,
    caller: Caller,
    init: { method?: string; body?: unknown } = {},
    tenant = 'acme',
  ) =>
    fetch(`${server.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        'content-type': 'application/json',
        ...(caller === 'no token' ? {} : { authorization: `Bearer ${tokens[`${tenant}/${caller}`]}` }),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(10_000),
    });

  const taskBody = (tenant = 'acme') => ({ repo: repos[tenant], prompt: PROMPT });
  const newTask = async (tenant = 'acme'): Promise<string> => {
    const res = await call('/v1/tasks', 'admin', { method: 'POST', body: taskBody(tenant) }, tenant);
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  const cancelledTask = async (tenant = 'acme') => {
    const id = await newTask(tenant);
    expect((await call(`/v1/tasks/${id}/cancel`, 'admin', { method: 'POST' }, tenant)).status).toBe(202);
    return id;
  };
  const scheduleBody = () => ({ name: `s${Date.now()}`, schedule: 'rate(1 hour)', task: taskBody() });
  const newSchedule = async (tenant = 'acme'): Promise<string> => {
    const body = { ...scheduleBody(), task: taskBody(tenant) };
    const res = await call('/v1/schedules', 'admin', { method: 'POST', body }, tenant);
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };

  /** The documented table: route → status for admin, operator, submitter, viewer, no token. */
  const ROUTES: [string, [number, number, number, number, number], (c: Caller) => Promise<Response>][] = [
    ['GET /healthz', [200, 200, 200, 200, 200], (c) => call('/healthz', c)],
    ['GET /metrics', [200, 200, 403, 403, 401], (c) => call('/metrics', c)],
    ['GET /v1/providers', [200, 200, 200, 200, 401], (c) => call('/v1/providers', c)],
    ['GET /v1/providers/stats', [200, 200, 200, 200, 401], (c) => call('/v1/providers/stats', c)],
    ['GET /v1/me', [200, 200, 200, 200, 401], (c) => call('/v1/me', c)],
    ['GET /v1/stats', [200, 200, 200, 200, 401], (c) => call('/v1/stats', c)],
    // the dashboard's files need no token; its calls do
    ['GET / (dashboard)', [200, 200, 200, 200, 200], (c) => call('/', c)],
    [
      'POST /v1/tasks',
      [201, 201, 201, 403, 401],
      (c) => call('/v1/tasks', c, { method: 'POST', body: taskBody() }),
    ],
    ['GET /v1/tasks', [200, 200, 200, 200, 401], (c) => call('/v1/tasks', c)],
    ['GET /v1/tasks/{id}', [200, 200, 200, 200, 401], async (c) => call(`/v1/tasks/${await newTask()}`, c)],
    [
      'GET /v1/tasks/{id}/logs',
      [200, 200, 200, 200, 401],
      async (c) => call(`/v1/tasks/${await newTask()}/logs`, c),
    ],
    [
      'GET /v1/tasks/{id}/logs?follow=1',
      [200, 200, 200, 200, 401],
      async (c) => call(`/v1/tasks/${await cancelledTask()}/logs?follow=1`, c),
    ],
    [
      'POST /v1/tasks/{id}/cancel',
      [202, 202, 202, 403, 401],
      async (c) => call(`/v1/tasks/${await newTask()}/cancel`, c, { method: 'POST' }),
    ],
    [
      'POST /v1/tasks/{id}/retry',
      [202, 202, 403, 403, 401],
      async (c) => call(`/v1/tasks/${await cancelledTask()}/retry`, c, { method: 'POST' }),
    ],
    [
      'POST /v1/tasks:batch',
      [201, 201, 201, 403, 401],
      (c) => call('/v1/tasks:batch', c, { method: 'POST', body: { tasks: [{ key: 'a', ...taskBody() }] } }),
    ],
    // an admin's task, no epic: those who may approve get 409, a submitter (not its submitter) 403
    [
      'POST /v1/tasks/{id}/approve',
      [409, 409, 403, 403, 401],
      async (c) => call(`/v1/tasks/${await newTask()}/approve`, c, { method: 'POST' }),
    ],
    [
      'POST /v1/schedules',
      [201, 201, 403, 403, 401],
      (c) => call('/v1/schedules', c, { method: 'POST', body: scheduleBody() }),
    ],
    ['GET /v1/schedules', [200, 200, 200, 200, 401], (c) => call('/v1/schedules', c)],
    ['GET /v1/audit', [200, 403, 403, 403, 401], (c) => call('/v1/audit', c)],
    [
      'GET /v1/roles/{role}/full-access',
      [200, 200, 200, 200, 401],
      (c) => call('/v1/roles/docs/full-access', c),
    ],
    [
      'PUT /v1/roles/{role}/full-access',
      [200, 403, 403, 403, 401],
      (c) => call('/v1/roles/docs/full-access', c, { method: 'PUT', body: { enabled: false } }),
    ],
    [
      'DELETE /v1/tenants/{own tenant}/data',
      [200, 403, 403, 403, 401],
      (c) => call('/v1/tenants/initech/data', c, { method: 'DELETE' }, 'initech'),
    ],
    [
      'GET /v1/schedules/{id}',
      [200, 200, 200, 200, 401],
      async (c) => call(`/v1/schedules/${await newSchedule()}`, c),
    ],
    [
      'DELETE /v1/schedules/{id}',
      [204, 204, 403, 403, 401],
      async (c) => call(`/v1/schedules/${await newSchedule()}`, c, { method: 'DELETE' }),
    ],
    // a token grants nothing here: only the delivery's signature counts (none sent: 401)
    [
      'POST /v1/webhooks/github',
      [401, 401, 401, 401, 401],
      (c) => call('/v1/webhooks/github', c, { method: 'POST', body: { zen: 'x' } }),
    ],
    ['any other route', [404, 404, 404, 404, 401], (c) => call('/v1/nothing-here', c)],
  ];

  const cases = ROUTES.flatMap(([route, statuses, send]) =>
    CALLERS.map((caller, i) => [route, caller, statuses[i] as number, send] as const),
  );

  it.each(cases)('%s as %s → %i', async (_route, caller, status, send) => {
    const res = await send(caller);
    await res.arrayBuffer();
    expect(res.status).toBe(status);
  });

  describe("another tenant's ids", () => {
    /** What globex's admin, who may do everything in globex, gets for each of acme's ids. */
    const probe = async (path: string, method = 'GET') => {
      const res = await call(path, 'admin', { method }, 'globex');
      const text = await res.text();
      expect(res.status).toBe(404);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'not_found' } });
      expect(text).not.toContain(PROMPT);
      expect(text).not.toContain(repos.acme);
    };
    const acmeTask = async (id: string) =>
      (await (await call(`/v1/tasks/${id}`, 'admin')).json()) as { status: string; attempts: unknown[] };

    it('answers 404 to reading a task, its logs and following them', async () => {
      const id = await newTask();
      await probe(`/v1/tasks/${id}`);
      await probe(`/v1/tasks/${id}/logs`);
      await probe(`/v1/tasks/${id}/logs?follow=1`);
    });

    it('answers 404 to cancelling a task, which stays queued', async () => {
      const id = await newTask();
      await probe(`/v1/tasks/${id}/cancel`, 'POST');
      expect((await acmeTask(id)).status).toBe('queued');
    });

    it('answers 404 to retrying a task, which stays cancelled', async () => {
      const id = await cancelledTask();
      await probe(`/v1/tasks/${id}/retry`, 'POST');
      expect((await acmeTask(id)).status).toBe('cancelled');
    });

    it('answers 404 to approving a task, and to a batch that depends on one', async () => {
      const id = await newTask();
      await probe(`/v1/tasks/${id}/approve`, 'POST');
      const batch = await call(
        '/v1/tasks:batch',
        'admin',
        { method: 'POST', body: { tasks: [{ key: 'a', ...taskBody('globex'), dependsOn: [id] }] } },
        'globex',
      );
      const text = await batch.text();
      expect(batch.status).toBe(400);
      expect(text).toContain(`unknown task ${id}`);
      expect(text).not.toContain(PROMPT);
    });

    it('answers 404 to reading and deleting a schedule, which stays', async () => {
      const id = await newSchedule();
      await probe(`/v1/schedules/${id}`);
      await probe(`/v1/schedules/${id}`, 'DELETE');
      expect((await call(`/v1/schedules/${id}`, 'admin')).status).toBe(200);
    });

    it("answers 404 to erasing the tenant's data, which stays", async () => {
      const id = await cancelledTask();
      await probe('/v1/tenants/acme/data', 'DELETE');
      expect((await acmeTask(id)).status).toBe('cancelled');
    });

    it('lists none of them, and a dependency on one is an unknown task', async () => {
      // Arrange
      const task = await newTask();
      const schedule = await newSchedule();
      // Act
      const tasks = await (await call('/v1/tasks?limit=500', 'admin', {}, 'globex')).text();
      const schedules = await (await call('/v1/schedules', 'admin', {}, 'globex')).text();
      const dependent = await call(
        '/v1/tasks',
        'admin',
        { method: 'POST', body: { ...taskBody('globex'), dependsOn: [task] } },
        'globex',
      );
      // Assert
      expect(tasks).not.toContain(task);
      expect(tasks).not.toContain(PROMPT);
      expect(schedules).not.toContain(schedule);
      expect(dependent.status).toBe(400);
      expect(await dependent.text()).toContain(`unknown task ${task}`);
    });
  });
});
