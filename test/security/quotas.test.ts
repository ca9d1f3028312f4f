import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../lib/core/errors.js';
import { parseQuotas } from '../../lib/core/quotas.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import {
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

/** Per-tenant quotas: over one, 429 with Retry-After and a message naming it; other tenants untouched. */
describe('tenant quotas', () => {
  let server: RunningServer;
  const repos: Record<string, string> = {};
  const TENANTS = ['acme', 'globex', 'initech'];

  beforeAll(async () => {
    const dir = tempDir('autodev-quotas-');
    for (const t of TENANTS) {
      mkdirSync(join(dir, t));
      repos[t] = makeRemote(join(dir, t));
    }
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_LOCAL_REPO_ROOTS: TENANTS.map((t) => `${t}=${join(dir, t)}`).join(';'),
        AUTODEV_QUOTAS: JSON.stringify({ acme: { tasksPerHour: 3 }, globex: { activeTasks: 2 } }),
      }),
    );
  });

  afterAll(async () => {
    await server?.stop();
  });

  const call = async (tenant: string, path: string, body?: unknown) => {
    const key = readSigningKey(join(server.env.AUTODEV_HOME as string, 'signing-key'));
    const token = await signLocalToken(key, { tenant, role: 'operator', subject: 'op', ttl: '5m' });
    return fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  const submit = (tenant: string) => call(tenant, '/v1/tasks', { repo: repos[tenant], prompt: 'x' });

  it('answers 429 with Retry-After naming tasks per hour once the hour is used up', async () => {
    // Arrange
    for (let i = 0; i < 3; i++) expect((await submit('acme')).status).toBe(201);
    // Act
    const refused = await submit('acme');
    // Assert
    expect(refused.status).toBe(429);
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(3500);
    expect(wait).toBeLessThanOrEqual(3600);
    expect(await refused.json()).toEqual({
      error: {
        code: 'too_many_requests',
        message: expect.stringMatching(/3 tasks in the last hour.*tasksPerHour/),
      },
    });
  });

  it('answers 429 naming active tasks while the tenant has that many not ended, and admits once one ends', async () => {
    // Arrange
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await submit('globex');
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as { id: string }).id);
    }
    // Act
    const refused = await submit('globex');
    await call('globex', `/v1/tasks/${ids[0]}/cancel`);
    const admitted = await submit('globex');
    // Assert
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/activeTasks/);
    expect(admitted.status).toBe(201);
  });

  it('leaves a tenant without quotas unlimited', async () => {
    for (let i = 0; i < 6; i++) expect((await submit('initech')).status).toBe(201);
  });

  it('refuses a quota configuration that is not valid, naming the field', () => {
    expect(parseQuotas('')).toEqual({});
    expect(() => parseQuotas('{"acme": {"tasksPerHour": 0}}')).toThrow(/acme\.tasksPerHour/);
    expect(() => parseQuotas('{"acme": {"perDay": 5}}')).toThrow(ConfigError);
    expect(() => parseQuotas('{"Bad Tenant": {}}')).toThrow(/Bad Tenant/);
  });
});
