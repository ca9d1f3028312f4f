import { mkdirSync, symlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import { signGithubPayload } from '../../lib/core/webhooks.js';
import { LOCAL_AUDIENCE, LOCAL_ISSUER, readSigningKey } from '../../lib/local/auth.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

/** The API as an attacker probes it: every answer is a clean 4xx, nothing loops, nothing reaches git. */
describe('the API door', () => {
  let server: RunningServer;
  let remote: string;
  let otherRemote: string;
  let linked: string;
  let home: string;
  let token: string;
  const WEBHOOK_SECRET = 'door-webhook-secret';

  const api = (path: string, init: RequestInit = {}, bearer = token) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...init.headers },
    });

  beforeAll(async () => {
    const dir = tempDir('autodev-door-');
    mkdirSync(join(dir, 'acme'));
    mkdirSync(join(dir, 'globex'));
    remote = makeRemote(join(dir, 'acme'));
    otherRemote = makeRemote(join(dir, 'globex'));
    // a link inside acme's directory to globex's repository, and to the whole of globex
    symlinkSync(otherRemote, join(dir, 'acme', 'linked.git'));
    symlinkSync(join(dir, 'globex'), join(dir, 'acme', 'linked-dir'));
    linked = join(dir, 'acme', 'linked.git');
    // no executor: tasks stay queued, so a log follow never ends by itself
    home = join(dir, 'home');
    server = await startServer(
      platformEnv(home, {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        AUTODEV_GITHUB_WEBHOOK_TENANT: 'acme',
        AUTODEV_LOCAL_REPO_ROOTS: `acme=${join(dir, 'acme')};globex=${join(dir, 'globex')}`,
        AUTODEV_ALLOWED_REPO_HOSTS: '',
      }),
    );
    token = (await cli(['token', '--tenant', 'acme', '--role', 'submitter'], server.env)).stdout.trim();
  });

  afterAll(async () => {
    await server?.stop();
  });

  const queuedTask = async (): Promise<string> => {
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({ repo: remote, prompt: 'x' }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };

  const shortToken = async (ttl = '2s') =>
    (await cli(['token', '--tenant', 'acme', '--role', 'submitter', '--ttl', ttl], server.env)).stdout.trim();

  describe('a log follow whose token expires', () => {
    it('ends the stream once the token expires, without repeating anything', async () => {
      // Arrange
      const id = await queuedTask();
      const bearer = await shortToken();
      const started = Date.now();
      // Act
      const res = await api(`/v1/tasks/${id}/logs?follow=1`, { signal: AbortSignal.timeout(10_000) }, bearer);
      expect(res.status).toBe(200);
      const body = await res.text();
      // Assert
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(body.length).toBeLessThan(1_000);
      // and a new request with that token is refused with 401
      expect((await api(`/v1/tasks/${id}`, {}, bearer)).status).toBe(401);
    });

    it('makes `autodev logs -f` exit non-zero and say the token expired', async () => {
      // Arrange
      const id = await queuedTask();
      const bearer = await shortToken();
      const started = Date.now();
      // Act
      const out = await cli(['logs', '-f', id], { ...server.env, AUTODEV_TOKEN: bearer }, 12_000);
      // Assert
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/401 The token has expired/);
    });
  });

  describe('GitHub deliveries', () => {
    const deliver = (body: string | Buffer, delivery: string) =>
      fetch(`${server.url}/v1/webhooks/github`, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'issues',
          'x-github-delivery': delivery,
          'x-hub-signature-256': signGithubPayload(WEBHOOK_SECRET, body),
        },
      });
    const taskCount = async () =>
      ((await (await api('/v1/tasks?limit=100')).json()) as { items: unknown[] }).items.length;

    it('makes one task of a signed delivery re-sent under new delivery ids', async () => {
      // Arrange
      const body = JSON.stringify({
        action: 'labeled',
        label: { name: 'autodev' },
        issue: {
          number: 41,
          title: 'Paginate the orders list',
          html_url: 'https://github.com/acme/shop/issues/41',
          labels: [{ name: 'autodev' }],
          updated_at: '2026-03-01T10:00:00Z',
        },
        repository: { full_name: 'acme/shop', clone_url: 'https://github.com/acme/shop.git' },
      });
      const before = await taskCount();
      // Act
      const answers = [];
      for (const id of ['d-1', 'd-2', 'd-3']) answers.push((await deliver(body, id)).status);
      // Assert
      expect(answers).toEqual([201, 200, 200]);
      expect(await taskCount()).toBe(before + 1);
    });

    it('refuses a validly signed body that is not UTF-8 with 400', async () => {
      const body = Buffer.concat([
        Buffer.from('{"action":"labeled","x":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]);
      const res = await deliver(body, 'd-latin');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: { code: 'validation_failed', message: 'The body is not UTF-8.' },
      });
    });

    it('refuses a task body that is not UTF-8 with 400', async () => {
      const res = await api('/v1/tasks', {
        method: 'POST',
        body: Buffer.concat([
          Buffer.from(`{"repo":${JSON.stringify(remote)},"prompt":"`),
          Buffer.from([0xff]),
          Buffer.from('"}'),
        ]),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'validation_failed' } });
    });
  });

  describe('repository addresses', () => {
    const submit = (repo: string) =>
      api('/v1/tasks', { method: 'POST', body: JSON.stringify({ repo, prompt: 'look around' }) });

    it.each([
      ['the root directory', () => '/'],
      ['/etc/passwd', () => '/etc/passwd'],
      ["another tenant's repository", () => otherRemote],
      ["another tenant's repository through ..", () => `${remote}/../../globex/remote.git`],
      ["another tenant's repository through a symbolic link", () => linked],
      ["another tenant's directory through a linked parent", () => `${linked}/../linked-dir/remote.git`],
      ['a file:// URL through a symbolic link', () => `file://${linked}`],
      ['a file:// URL outside', () => 'file:///etc'],
      ['the metadata address', () => 'https://169.254.169.254/latest/meta-data/'],
      ['the metadata address as a number', () => 'http://2852039166/x.git'],
      ['loopback', () => 'https://127.0.0.1/x.git'],
      ['IPv4-mapped IPv6 loopback', () => 'https://[::ffff:127.0.0.1]/x.git'],
      ['a private address', () => 'ssh://git@10.0.0.8/x.git'],
      ['localhost', () => 'git@localhost:x.git'],
      ['an option', () => '--upload-pack=touch /tmp/x'],
    ])('refuses %s with 400 naming repo, and queues nothing', async (_what, repo) => {
      const before = ((await (await api('/v1/tasks?limit=100')).json()) as { items: unknown[] }).items.length;
      const res = await submit(repo());
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; details: { field: string }[] } };
      expect(body.error.code).toBe('validation_failed');
      expect(body.error.details.map((d) => d.field)).toContain('repo');
      const after = ((await (await api('/v1/tasks?limit=100')).json()) as { items: unknown[] }).items.length;
      expect(after).toBe(before);
    });

    it("accepts the tenant's own repository under its configured directory", async () => {
      expect((await submit(remote)).status).toBe(201);
      expect((await submit(`file://${remote}`)).status).toBe(201);
    });

    it('refuses the same addresses in a schedule', async () => {
      const operator = (
        await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)
      ).stdout.trim();
      const res = await api(
        '/v1/schedules',
        {
          method: 'POST',
          body: JSON.stringify({
            name: 'nightly',
            schedule: 'rate(1 day)',
            task: { repo: 'https://169.254.169.254/x.git', prompt: 'x' },
          }),
        },
        operator,
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { details: [{ field: 'task.repo' }] } });
    });
  });

  describe('ids and tokens', () => {
    it.each([
      ['GET', '/v1/tasks/%E0%A4'],
      ['GET', '/v1/tasks/%E0%A4/logs'],
      ['GET', '/v1/tasks/%/logs?follow=1'],
      ['POST', '/v1/tasks/%ZZ/cancel'],
      ['POST', '/v1/tasks/%C0/retry'],
      ['GET', '/v1/schedules/%E0'],
    ])(
      'answers %s %s (a malformed percent-escape) with 400 and the JSON error shape',
      async (method, path) => {
        const operator = (
          await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)
        ).stdout.trim();
        const res = await api(path, { method }, operator);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({
          error: { code: 'validation_failed', details: [{ field: 'id' }] },
        });
      },
    );

    const signed = (build: (jwt: SignJWT) => SignJWT) =>
      build(
        new SignJWT({ tenant: 'acme', role: 'admin' })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject('mallory')
          .setIssuer(LOCAL_ISSUER)
          .setAudience(LOCAL_AUDIENCE)
          .setIssuedAt(),
      ).sign(readSigningKey(join(home, 'signing-key')));

    it.each([
      ['without exp', (j: SignJWT) => j],
      ['expiring in the year 3000', (j: SignJWT) => j.setExpirationTime(new Date('3000-01-01T00:00:00Z'))],
      ['living 30 days', (j: SignJWT) => j.setExpirationTime('30d')],
    ])('refuses a token %s with 401', async (_what, build) => {
      const res = await api('/v1/tasks', {}, await signed(build));
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: 'unauthorized' } });
    });

    it('accepts a token within the cap', async () => {
      expect((await api('/v1/tasks', {}, await signed((j) => j.setExpirationTime('1h')))).status).toBe(200);
    });

    it('`autodev token` refuses a lifetime over the cap', async () => {
      const long = await cli(['token', '--tenant', 'acme', '--role', 'viewer', '--ttl', '30d'], server.env);
      expect(long.code).toBe(1);
      expect(long.stderr).toMatch(/AUTODEV_MAX_TOKEN_TTL/);
      const capped = await cli(['token', '--tenant', 'acme', '--role', 'viewer', '--ttl', '2h'], {
        ...server.env,
        AUTODEV_MAX_TOKEN_TTL: '1h',
      });
      expect(capped.code).toBe(1);
      expect(capped.stdout).toBe('');
    });
  });
});

describe('the HTTP server holds no client forever', () => {
  let server: RunningServer;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = await startServer(
      platformEnv(join(tempDir('autodev-door-http-'), 'home'), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_HTTP_HEADERS_TIMEOUT_MS: '1000',
        AUTODEV_HTTP_REQUEST_TIMEOUT_MS: '2000',
        AUTODEV_HTTP_MAX_CONNECTIONS: '4',
      }),
    );
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await server?.stop();
  });

  /** A raw connection to the server; resolves `closed` with what the server sent before closing. */
  const open = () => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    sockets.push(socket);
    let received = '';
    socket.on('data', (d) => {
      received += d;
    });
    const closed = new Promise<{ at: number; received: string }>((resolve) =>
      socket.on('close', () => resolve({ at: Date.now(), received })),
    );
    socket.on('error', () => undefined);
    return { socket, closed, connected: new Promise((r) => socket.once('connect', r)) };
  };

  it('cuts off a client that never finishes its headers (slowloris), with 408', async () => {
    // Arrange
    const { socket, closed, connected } = open();
    await connected;
    const started = Date.now();
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // one more header line every 200 ms, never the blank line that ends them
    const drip = setInterval(() => socket.writable && socket.write(`X-Drip-${Date.now()}: 1\r\n`), 200);
    // Act
    const end = await Promise.race([
      closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 8_000)),
    ]);
    clearInterval(drip);
    // Assert
    expect(end).toBeDefined();
    expect((end?.at ?? 0) - started).toBeLessThan(5_000);
    expect(end?.received).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes connections beyond the cap at once, and serves again when they are gone', async () => {
    // Arrange: the cap's worth of open connections, each in the middle of its headers
    const held = Array.from({ length: 4 }, () => open());
    await Promise.all(held.map((h) => h.connected));
    for (const h of held) h.socket.write('GET /healthz HTTP/1.1\r\n');
    // Act
    const extra = open();
    const end = await Promise.race([
      extra.closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 800)),
    ]);
    // Assert
    expect(end).toBeDefined();
    expect(end?.received).toBe('');
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('answers a body over 1 MiB with 413', async () => {
    const res = await fetch(`${server.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
  });
});
