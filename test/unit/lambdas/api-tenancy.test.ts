import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import type { ApiEvent, ApiResult } from '../../../lib/api/handler.js';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { lambdaEnvironment } from './environment.js';
import { apiEvent, lambdaContext } from './events.js';

const sqs = mockClient(SQSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let handler: (event: ApiEvent, context: ReturnType<typeof lambdaContext>) => Promise<ApiResult>;

const now = () => Math.floor(Date.now() / 1000);
/** Claims as API Gateway's JWT authorizer passes them: a Cognito-style `cognito:groups` list and an `org`. */
const claims = (org: string, groups: string, extra: Record<string, unknown> = {}) => ({
  sub: `u-${org}-${groups}`,
  org,
  'cognito:groups': `[${groups}]`,
  iss: 'https://id.example.com',
  exp: now() + 3600,
  ...extra,
});
const call = (e: Parameters<typeof apiEvent>[0]) => handler(apiEvent(e), lambdaContext('api'));
const body = (r: ApiResult) => JSON.parse(String(r.body));
const submit = (c: Record<string, unknown>) =>
  call({
    method: 'POST',
    path: '/v1/tasks',
    claims: c,
    body: { repo: 'https://github.com/acme/app.git', prompt: 'p' },
  });

/**
 * The API Lambda configured as the stack configures it from CDK context (quotas, claim mapping,
 * clock skew, legal hold: lib/infra/api.ts), on DynamoDB Local.
 */
beforeAll(async () => {
  ({ ddb, store } = await lambdaEnvironment());
  Object.assign(process.env, {
    AUTODEV_QUOTAS: JSON.stringify({ acme: { tasksPerHour: 2 }, '*': { activeTasks: 50 } }),
    AUTODEV_OIDC_TENANT_CLAIM: 'org',
    AUTODEV_OIDC_ROLE_CLAIM: 'cognito:groups',
    AUTODEV_OIDC_ROLE_MAP: 'autodev-admins=admin,eng=submitter',
    AUTODEV_CLOCK_SKEW_SECONDS: '5',
    AUTODEV_AUDIT_HOLD_DAYS: '0',
  });
  ({ handler } = await import('../../../lambdas/api.js'));
}, 60_000);
beforeEach(() => {
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
});
afterEach(() => {
  sqs.reset();
});
afterAll(async () => ddb?.stop());

describe('the API Lambda configured for tenancy', () => {
  it("answers 429 with Retry-After over a tenant's tasks per hour, and leaves other tenants alone", async () => {
    // Act
    const first = await submit(claims('acme', 'eng'));
    const second = await submit(claims('acme', 'eng'));
    const third = await submit(claims('acme', 'eng'));
    const other = await submit(claims('globex', 'eng'));
    // Assert
    expect([first.statusCode, second.statusCode]).toEqual([201, 201]);
    expect(third.statusCode).toBe(429);
    expect(body(third).error).toMatchObject({ code: 'too_many_requests' });
    expect(body(third).error.message).toContain('tasksPerHour');
    expect(Number(third.headers?.['retry-after'])).toBeGreaterThan(3500);
    expect(other.statusCode).toBe(201);
    expect((await store.list('acme', { limit: 10 })).items).toHaveLength(2);
  });

  it('reads the tenant and role from the configured claims, through the role map only', async () => {
    const viewerOfNothing = await call({
      method: 'GET',
      path: '/v1/tasks',
      claims: claims('globex', 'admin'),
    });
    const mapped = await call({
      method: 'GET',
      path: '/v1/audit',
      claims: claims('globex', 'autodev-admins eng'),
    });
    const defaultClaims = await call({
      method: 'GET',
      path: '/v1/tasks',
      claims: { sub: 'x', tenant: 'globex', role: 'admin', exp: now() + 60 },
    });
    // a group named like a role grants nothing when a role map is set; the strongest mapped role wins
    expect(viewerOfNothing.statusCode).toBe(401);
    expect(mapped.statusCode).toBe(200);
    // `tenant` and `role` are not the configured claims
    expect(defaultClaims.statusCode).toBe(401);
    expect(body(defaultClaims).error.message).toContain('org');
  });

  it('allows the configured clock skew on nbf, not more', async () => {
    const within = await call({
      method: 'GET',
      path: '/v1/tasks',
      claims: claims('globex', 'eng', { nbf: now() + 3 }),
    });
    const beyond = await call({
      method: 'GET',
      path: '/v1/tasks',
      claims: claims('globex', 'eng', { nbf: now() + 20 }),
    });
    expect(within.statusCode).toBe(200);
    expect(beyond.statusCode).toBe(401);
  });

  it('serves full-access mode on DynamoDB: only an admin changes it, for its own tenant, audited', async () => {
    // Arrange
    const admin = claims('initech', 'autodev-admins');
    const submitter = claims('initech', 'eng');
    const put = (c: Record<string, unknown>, role: string, enabled: unknown) =>
      call({ method: 'PUT', path: `/v1/roles/${role}/full-access`, claims: c, body: { enabled } });
    const get = (c: Record<string, unknown>, role: string) =>
      call({ method: 'GET', path: `/v1/roles/${role}/full-access`, claims: c });
    // Act
    const refused = await put(submitter, 'devops', true);
    const bad = await put(admin, 'devops', 'yes');
    const unknown = await put(admin, 'nope', true);
    const enabled = await put(admin, 'devops', true);
    // Assert
    expect(refused.statusCode).toBe(403);
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(body(bad))).toContain('enabled');
    expect(unknown.statusCode).toBe(404);
    expect(enabled.statusCode).toBe(200);
    expect(body(enabled)).toMatchObject({ tenant: 'initech', role: 'devops', fullAccess: true });
    expect(body(await get(submitter, 'devops'))).toMatchObject({ fullAccess: true, updatedBy: admin.sub });
    // another tenant's setting of the same role is its own
    expect(body(await get(claims('globex', 'eng'), 'devops'))).toMatchObject({ fullAccess: false });
    const trail = body(
      await call({
        method: 'GET',
        path: '/v1/audit',
        query: { action: 'role.full_access.enable' },
        claims: admin,
      }),
    ).items as { subject: string; status: number; target: string }[];
    expect(trail.map((e) => [e.subject, e.status, e.target])).toEqual(
      expect.arrayContaining([
        [admin.sub, 200, 'devops'],
        [submitter.sub, 403, 'devops'],
      ]),
    );
    const off = await put(admin, 'devops', false);
    expect(body(off)).toMatchObject({ fullAccess: false });
  });

  it("erases a tenant's data on DynamoDB for its own admin only, reporting what went", async () => {
    // Arrange: globex has a task; its admin cancels it
    const admin = claims('globex', 'autodev-admins');
    const created = await submit(admin);
    const foreign = await call({
      method: 'DELETE',
      path: '/v1/tenants/globex/data',
      claims: claims('acme', 'autodev-admins'),
    });
    const busy = await call({ method: 'DELETE', path: '/v1/tenants/globex/data', claims: admin });
    for (const t of (await store.list('globex', { limit: 50 })).items) {
      expect(
        (await call({ method: 'POST', path: `/v1/tasks/${t.id}/cancel`, claims: admin })).statusCode,
      ).toBe(202);
    }
    const acmeBefore = (await store.list('acme', { limit: 50 })).items.map((t) => t.id);
    // model spend the workers counted for each tenant (the usdPerDay quota's daily counters)
    await store.addTenantSpend('globex', '2026-12-01', 2);
    await store.addTenantSpend('globex', '2026-12-02', 1);
    await store.addTenantSpend('acme', '2026-12-02', 3);
    // Act
    const erased = await call({ method: 'DELETE', path: '/v1/tenants/globex/data', claims: admin });
    // Assert
    expect(created.statusCode).toBe(201);
    expect(foreign.statusCode).toBe(404);
    expect(busy.statusCode).toBe(409);
    expect(erased.statusCode).toBe(200);
    expect(body(erased)).toMatchObject({ tenant: 'globex', erased: { tasks: 2, schedules: 0 } });
    expect(body(erased).erased.auditEntries).toBeGreaterThan(0);
    expect(body(erased).erased.spendCounters).toBe(2);
    expect(await store.tenantSpend('globex', '2026-12-01')).toBe(0);
    expect(await store.tenantSpend('globex', '2026-12-02')).toBe(0);
    expect(await store.tenantSpend('acme', '2026-12-02')).toBe(3);
    expect((await store.list('globex', { limit: 50 })).items).toEqual([]);
    expect((await store.list('acme', { limit: 50 })).items.map((t) => t.id)).toEqual(acmeBefore);
    const trail = body(await call({ method: 'GET', path: '/v1/audit', claims: admin })).items;
    expect(trail).toEqual([expect.objectContaining({ action: 'tenant.erase', status: 200 })]);
  });
});
