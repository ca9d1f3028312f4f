import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuditEntry } from '../../lib/core/audit.js';
import type { AccessRole, Task } from '../../lib/core/schemas.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import {
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/**
 * Full-access mode through the public API: only an admin turns it on for an agent role (refusals
 * and changes in the audit trail), and only that tenant's tasks of that role get the machine's
 * network; every other agent (its CLI behind the model gateway) reaches nothing but the gateway.
 */
describe('full-access mode', () => {
  let server: RunningServer;
  let outside: Server;
  let outsideUrl: string;
  const dir = tempDir('autodev-full-access-');
  const repo = makeRemote(dir);

  beforeAll(async () => {
    // a service on the machine's loopback that no sandboxed agent should reach
    outside = createServer((_req, res) => res.end('the machine network\n'));
    await new Promise<void>((r) => outside.listen(0, '127.0.0.1', () => r()));
    outsideUrl = `http://127.0.0.1:${(outside.address() as AddressInfo).port}/`;
    server = await startServer(platformEnv(join(dir, 'home'), { AUTODEV_CONCURRENCY: '2' }));
  });

  afterAll(async () => {
    await server?.stop();
    outside?.close();
  });

  const call = async (tenant: string, role: AccessRole, method: string, path: string, body?: unknown) => {
    const key = readSigningKey(join(server.env.AUTODEV_HOME as string, 'signing-key'));
    const token = await signLocalToken(key, { tenant, role, subject: `${tenant}-${role}`, ttl: '10m' });
    return fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  const audit = async (tenant: string, action: string) => {
    const res = await call(tenant, 'admin', 'GET', `/v1/audit?action=${action}`);
    return ((await res.json()) as { items: AuditEntry[] }).items;
  };
  /** Runs a task of `role` that fetches the outside service; what its agent said about it. */
  const fetchFrom = async (tenant: string, role: string) => {
    const res = await call(tenant, 'operator', 'POST', '/v1/tasks', {
      repo,
      role,
      prompt: `look around [fake:fetch=${outsideUrl}]`,
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as Task;
    await until(
      async () => {
        const t = (await (await call(tenant, 'viewer', 'GET', `/v1/tasks/${id}`)).json()) as Task;
        return t.status === 'succeeded' || t.status === 'failed';
      },
      60_000,
      `task ${id} to end`,
    );
    const logs = await (await call(tenant, 'viewer', 'GET', `/v1/tasks/${id}/logs`)).text();
    return logs.split('\n').find((l) => l.includes('fetch')) ?? logs;
  };

  it('refuses a non-admin (403) and records the refusal', async () => {
    for (const role of ['operator', 'submitter', 'viewer'] as const) {
      // Act
      const res = await call('acme', role, 'PUT', '/v1/roles/devops/full-access', { enabled: true });
      // Assert
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        error: { code: 'forbidden', message: expect.stringContaining('role:manage') },
      });
    }
    const refused = await audit('acme', 'role.full_access.enable');
    expect(refused.map((e) => [e.subject, e.status, e.outcome, e.target])).toEqual(
      expect.arrayContaining([
        ['acme-operator', 403, 'forbidden', 'devops'],
        ['acme-submitter', 403, 'forbidden', 'devops'],
        ['acme-viewer', 403, 'forbidden', 'devops'],
      ]),
    );
    const setting = await call('acme', 'viewer', 'GET', '/v1/roles/devops/full-access');
    expect(await setting.json()).toMatchObject({ role: 'devops', fullAccess: false });
  });

  it('answers 400 naming the field for a bad body and 404 for an unknown role', async () => {
    const bad = await call('acme', 'admin', 'PUT', '/v1/roles/devops/full-access', { enabled: 'yes' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('enabled');
    const unknown = await call('acme', 'admin', 'PUT', '/v1/roles/nope/full-access', { enabled: true });
    expect(unknown.status).toBe(404);
  });

  it('lets an admin enable it, and records who did', async () => {
    // Act
    const res = await call('acme', 'admin', 'PUT', '/v1/roles/devops/full-access', { enabled: true });
    // Assert
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ tenant: 'acme', role: 'devops', fullAccess: true });
    const enabled = await audit('acme', 'role.full_access.enable');
    expect(enabled[0]).toMatchObject({
      subject: 'acme-admin',
      status: 200,
      outcome: 'ok',
      target: 'devops',
      method: 'PUT',
    });
  });

  it('runs that role’s tasks with the machine’s network, and no other role’s or tenant’s', async () => {
    // Act
    const [full, otherRole, otherTenant] = await Promise.all([
      fetchFrom('acme', 'devops'),
      fetchFrom('acme', 'backend'),
      fetchFrom('globex', 'devops'),
    ]);
    // Assert
    expect(full).toContain('fetched');
    expect(full).toContain('the machine network');
    expect(otherRole).toContain('could not fetch');
    expect(otherTenant).toContain('could not fetch');
  }, 120_000);

  it('takes the network away again once an admin disables it', async () => {
    const res = await call('acme', 'admin', 'PUT', '/v1/roles/devops/full-access', { enabled: false });
    expect(res.status).toBe(200);
    expect(await audit('acme', 'role.full_access.disable')).toHaveLength(1);
    expect(await fetchFrom('acme', 'devops')).toContain('could not fetch');
  }, 60_000);
});
