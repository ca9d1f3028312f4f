import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

describe('recurring tasks through the local API and CLI', () => {
  let server: RunningServer;
  let remote: string;
  const tokens: Record<string, string> = {};

  const call = (method: string, path: string, token: string | undefined, body?: object) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const schedule = () => ({
    name: 'nightly',
    schedule: 'cron(0 3 * * ? *)',
    timezone: 'Europe/Paris',
    task: { repo: remote, prompt: 'Update the dependencies.' },
  });

  beforeAll(async () => {
    const dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(platformEnv(join(dir, 'home'), { AUTODEV_CLAUDE_BIN: '/nonexistent/claude' }));
    for (const [name, tenant, role] of [
      ['operator', 'acme', 'operator'],
      ['submitter', 'acme', 'submitter'],
      ['other', 'globex', 'admin'],
    ] as const) {
      tokens[name] = (await cli(['token', '--tenant', tenant, '--role', role], server.env)).stdout.trim();
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('creates, lists, reads and deletes a schedule over HTTP', async () => {
    // Act
    const created = await call('POST', '/v1/schedules', tokens.operator, schedule());
    const body = (await created.json()) as { id: string };
    const listed = await call('GET', '/v1/schedules', tokens.submitter);
    const read = await call('GET', `/v1/schedules/${body.id}`, tokens.submitter);
    const deleted = await call('DELETE', `/v1/schedules/${body.id}`, tokens.operator);
    const gone = await call('GET', `/v1/schedules/${body.id}`, tokens.operator);
    // Assert
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/schedules/${body.id}`);
    expect(body).toMatchObject({ tenant: 'acme', name: 'nightly', timezone: 'Europe/Paris', enabled: true });
    expect(((await listed.json()) as { items: { id: string }[] }).items.map((s) => s.id)).toEqual([body.id]);
    expect(await read.json()).toEqual(body);
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
  });

  it('answers 400 naming the field for a bad cron expression', async () => {
    const res = await call('POST', '/v1/schedules', tokens.operator, {
      ...schedule(),
      schedule: 'cron(0 3 * * *)',
    });
    expect(res.status).toBe(400);
    const err = (await res.json()) as { error: { code: string; details: { field: string }[] } };
    expect(err.error.code).toBe('validation_failed');
    expect(err.error.details.map((d) => d.field)).toEqual(['schedule']);
  });

  it('answers 403 to a submitter making a schedule', async () => {
    const res = await call('POST', '/v1/schedules', tokens.submitter, schedule());
    expect(res.status).toBe(403);
  });

  it("answers 404 for another tenant's schedule", async () => {
    const created = (await (await call('POST', '/v1/schedules', tokens.operator, schedule())).json()) as {
      id: string;
    };
    expect((await call('GET', `/v1/schedules/${created.id}`, tokens.other)).status).toBe(404);
    expect((await call('DELETE', `/v1/schedules/${created.id}`, tokens.other)).status).toBe(404);
    expect(
      ((await (await call('GET', '/v1/schedules', tokens.other)).json()) as { items: [] }).items,
    ).toEqual([]);
    expect((await call('GET', `/v1/schedules/${created.id}`, tokens.operator)).status).toBe(200);
  });

  it('creates, lists and deletes a schedule with the CLI', async () => {
    const env = { ...server.env, AUTODEV_URL: server.url, AUTODEV_TENANT: 'initech' };
    const made = await cli(
      [
        'schedule',
        'create',
        '--name',
        'weekly',
        '--cron',
        'cron(0 8 ? * MON *)',
        '--repo',
        remote,
        '--prompt',
        'Tidy.',
      ],
      env,
    );
    expect(made.stderr).toBe('');
    const id = made.stdout.trim();
    expect(id).toMatch(/^s[0-9a-z]{20}$/);
    const list = await cli(['schedule', 'list'], env);
    expect(list.stdout).toContain(`${id}  weekly`);
    expect(list.stdout).toContain('cron(0 8 ? * MON *) UTC');
    const del = await cli(['schedule', 'delete', id], env);
    expect(del.code).toBe(0);
    expect((await cli(['schedule', 'list'], env)).stdout).toBe('');
    const bad = await cli(
      ['schedule', 'create', '--name', 'x', '--cron', 'rate(1 week)', '--repo', remote, '--prompt', 'p'],
      env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('400');
  });
});
