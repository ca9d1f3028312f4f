import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import type { AuditEntry } from '../../lib/core/audit.js';
import type { AccessRole } from '../../lib/core/schemas.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

const TENANTS = ['acme', 'globex', 'initech'] as const;
type Tenant = (typeof TENANTS)[number];
type Page = { items: AuditEntry[]; nextCursor?: string };

describe('the audit trail of the local API', () => {
  let server: RunningServer;
  let dbFile: string;
  const repos: Record<string, string> = {};
  const tokens: Record<string, string> = {};
  const started = new Date().toISOString();

  beforeAll(async () => {
    const dir = tempDir('autodev-audit-');
    for (const tenant of TENANTS) {
      mkdirSync(join(dir, tenant));
      repos[tenant] = makeRemote(join(dir, tenant));
    }
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_LOCAL_REPO_ROOTS: TENANTS.map((t) => `${t}=${join(dir, t)}`).join(';'),
        AUTODEV_QUOTAS: JSON.stringify({ initech: { tasksPerHour: 1 } }),
      }),
    );
    dbFile = join(server.env.AUTODEV_HOME as string, 'autodev.db');
    const key = readSigningKey(join(server.env.AUTODEV_HOME as string, 'signing-key'));
    for (const tenant of TENANTS) {
      for (const role of ['admin', 'operator', 'submitter', 'viewer'] as const) {
        tokens[`${tenant}/${role}`] = await signLocalToken(key, {
          tenant,
          role,
          subject: `${tenant}-${role}`,
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
    caller: AccessRole | 'no token',
    init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
    tenant: Tenant = 'acme',
  ) =>
    fetch(`${server.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        'content-type': 'application/json',
        ...(caller === 'no token' ? {} : { authorization: `Bearer ${tokens[`${tenant}/${caller}`]}` }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(10_000),
    });

  const audit = async (query = '', tenant: Tenant = 'acme'): Promise<Page> => {
    const res = await call(`/v1/audit${query}`, 'admin', {}, tenant);
    expect(res.status).toBe(200);
    return (await res.json()) as Page;
  };
  /** The entry of the call answered with `res` (by its x-request-id), from its tenant's trail. */
  const entryOf = async (res: Response, tenant: Tenant = 'acme'): Promise<AuditEntry | undefined> => {
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const page = await audit('?limit=500', tenant);
    return page.items.find((e) => e.requestId === requestId);
  };
  const submit = async (role: AccessRole = 'submitter', tenant: Tenant = 'acme') => {
    const res = await call(
      '/v1/tasks',
      role,
      { method: 'POST', body: { repo: repos[tenant], prompt: 'p' } },
      tenant,
    );
    return { res, id: res.ok ? ((await res.clone().json()) as { id: string }).id : undefined };
  };

  it('records a submit with who, tenant, action, target, result, request id and time', async () => {
    const { res, id } = await submit();
    expect(res.status).toBe(201);
    const entry = await entryOf(res);
    expect(entry).toMatchObject({
      tenant: 'acme',
      subject: 'acme-submitter',
      action: 'task.create',
      target: id,
      status: 201,
      outcome: 'ok',
      method: 'POST',
      path: '/v1/tasks',
    });
    const at = entry?.at ?? '';
    expect(at >= started && at <= new Date().toISOString()).toBe(true);
  });

  it('records a cancel, and a viewer refused cancelling it', async () => {
    const { id } = await submit();
    const refused = await call(`/v1/tasks/${id}/cancel`, 'viewer', { method: 'POST' });
    expect(refused.status).toBe(403);
    const done = await call(`/v1/tasks/${id}/cancel`, 'submitter', { method: 'POST' });
    expect(done.status).toBe(202);
    expect(await entryOf(refused)).toMatchObject({
      tenant: 'acme',
      subject: 'acme-viewer',
      action: 'task.cancel',
      target: id,
      status: 403,
      outcome: 'forbidden',
    });
    expect(await entryOf(done)).toMatchObject({
      subject: 'acme-submitter',
      action: 'task.cancel',
      target: id,
      status: 202,
      outcome: 'ok',
    });
  });

  it("records another tenant's attempt in the caller's tenant, and never shows it to the task's", async () => {
    const { id } = await submit();
    const res = await call(`/v1/tasks/${id}/cancel`, 'admin', { method: 'POST' }, 'globex');
    expect(res.status).toBe(404);
    expect(await entryOf(res, 'globex')).toMatchObject({
      tenant: 'globex',
      subject: 'globex-admin',
      action: 'task.cancel',
      target: id,
      status: 404,
      outcome: 'not_found',
    });
    expect(await entryOf(res, 'acme')).toBeUndefined();
  });

  it("never shows tenant A's admin an entry of tenant B", async () => {
    const { id } = await submit('admin', 'globex');
    const acme = await audit('?limit=500');
    const globex = await audit('?limit=500', 'globex');
    expect(acme.items.length).toBeGreaterThan(0);
    expect(acme.items.every((e) => e.tenant === 'acme')).toBe(true);
    expect(JSON.stringify(acme)).not.toContain(id);
    expect(globex.items.every((e) => e.tenant === 'globex')).toBe(true);
    expect(globex.items.some((e) => e.target === id)).toBe(true);
    // a filter naming another tenant changes nothing: the tenant is always the caller's
    expect((await audit('?limit=500&tenant=globex')).items.every((e) => e.tenant === 'acme')).toBe(true);
  });

  it('records refusals: 400, 409, 429, and 401 with what is known', async () => {
    const bad = await call('/v1/tasks', 'admin', { method: 'POST', body: { prompt: 'no repo' } });
    expect(bad.status).toBe(400);
    expect(await entryOf(bad)).toMatchObject({
      action: 'task.create',
      status: 400,
      outcome: 'validation_failed',
    });

    const key = { 'idempotency-key': `k-${Date.now()}` };
    const body = { repo: repos.acme, prompt: 'one' };
    expect((await call('/v1/tasks', 'admin', { method: 'POST', body, headers: key })).status).toBe(201);
    const conflict = await call('/v1/tasks', 'admin', {
      method: 'POST',
      body: { ...body, prompt: 'two' },
      headers: key,
    });
    expect(conflict.status).toBe(409);
    expect((await entryOf(conflict))?.status).toBe(409);

    expect((await submit('admin', 'initech')).res.status).toBe(201);
    const over = (await submit('admin', 'initech')).res;
    expect(over.status).toBe(429);
    expect(await entryOf(over, 'initech')).toMatchObject({ subject: 'initech-admin', status: 429 });

    const anonymous = await call('/v1/tasks', 'no token', { method: 'POST', body });
    expect(anonymous.status).toBe(401);
    const db = new Database(dbFile, { readonly: true });
    try {
      const row = db
        .prepare('SELECT tenant, subject, action, status, outcome FROM audit_log WHERE request_id = ?')
        .get(anonymous.headers.get('x-request-id'));
      expect(row).toEqual({
        tenant: null,
        subject: null,
        action: 'task.create',
        status: 401,
        outcome: 'unauthorized',
      });
    } finally {
      db.close();
    }
  });

  it('does not record reads that succeed', async () => {
    const res = await call('/v1/tasks', 'viewer');
    expect(res.status).toBe(200);
    expect(await entryOf(res)).toBeUndefined();
  });

  it.each([
    ['operator', 403],
    ['submitter', 403],
    ['viewer', 403],
    ['no token', 401],
  ] as const)('answers %s %i on GET /v1/audit', async (caller, status) => {
    const res = await call('/v1/audit', caller);
    expect(res.status).toBe(status);
    expect(JSON.stringify(await res.json())).not.toContain('requestId');
  });

  it('filters by action, subject, result and time, and pages with a cursor', async () => {
    const { id } = await submit('viewer');
    expect(id).toBeUndefined();
    const refused = await audit('?action=task.create&subject=acme-viewer&result=refused');
    expect(refused.items.length).toBeGreaterThan(0);
    expect(
      refused.items.every(
        (e) => e.action === 'task.create' && e.subject === 'acme-viewer' && e.status >= 400,
      ),
    ).toBe(true);
    expect((await audit('?result=403')).items.every((e) => e.status === 403)).toBe(true);
    expect((await audit('?result=ok')).items.every((e) => e.status < 400)).toBe(true);
    expect((await audit('?since=2999-01-01T00:00:00Z')).items).toEqual([]);
    expect((await audit(`?until=${encodeURIComponent(started)}`)).items).toEqual([]);

    const all = await audit('?limit=500');
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.items.map((e) => e.id));
  });

  it.each([
    ['limit', '?limit=0'],
    ['cursor', '?cursor=abc'],
    ['cursor', '?cursor=a%2Fb'],
    ['result', '?result=maybe'],
    ['since', '?since=yesterday'],
  ])('answers 400 naming %s for a bad filter', async (field, query) => {
    const res = await call(`/v1/audit${query}`, 'admin');
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(field);
  });

  it('keeps the table append-only: SQLite refuses an UPDATE and a DELETE', () => {
    const db = new Database(dbFile);
    try {
      const before = db.prepare('SELECT count(*) AS n FROM audit_log').get();
      expect(() => db.prepare("UPDATE audit_log SET subject = 'someone-else'").run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
      expect(db.prepare('SELECT count(*) AS n FROM audit_log').get()).toEqual(before);
      expect(db.prepare("SELECT count(*) AS n FROM audit_log WHERE subject = 'someone-else'").get()).toEqual({
        n: 0,
      });
    } finally {
      db.close();
    }
  });

  it('is what `autodev audit --json` prints, for an admin of the tenant', async () => {
    const out = await cli(['audit', '--json', '--action', 'task.cancel', '--limit', '5'], {
      ...server.env,
      AUTODEV_TENANT: 'acme',
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const page = JSON.parse(out.stdout) as Page;
    expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.every((e) => e.tenant === 'acme' && e.action === 'task.cancel')).toBe(true);
    const text = await cli(['audit', '--limit', '1'], { ...server.env, AUTODEV_TENANT: 'acme' });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\S+Z {2}\d{3} {2}/);
  });
});
