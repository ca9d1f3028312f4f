import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Principal } from '../../../lib/core/access.js';
import { toHttpError } from '../../../lib/core/errors.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { TaskService } from '../../../lib/core/tasks.js';
import { handleGithubWebhook, signGithubPayload } from '../../../lib/core/webhooks.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';
import { SqliteDeliveryLog } from '../../../lib/local/webhook-deliveries.js';
import { tempDir } from '../../support/local-platform.js';

const SECRET = 'shared-webhook-secret';
/** Webhooks carry no token: the route acts for a configured tenant as a submitter. */
const WEBHOOK_PRINCIPAL: Principal = { tenant: 'acme', role: 'submitter', subject: 'github-webhook' };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `POST /v1/webhooks/github` as the API handler would serve it: verify, map, submit. */
async function startIntake() {
  const file = join(tempDir('autodev-webhook-'), 'autodev.db');
  const store = new SqliteTaskStore(file);
  const deliveries = new SqliteDeliveryLog(file);
  const ready: Task[] = [];
  const service = new TaskService({
    store,
    notifier: { taskReady: async (t) => void ready.push(t), cancelRequested: async () => {} },
    roles: BUILT_IN_ROLES,
    knownProviders: ['claude', 'codex'],
  });
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]),
    );
    let status: number;
    let body: unknown;
    try {
      const out = await handleGithubWebhook({
        headers,
        rawBody: Buffer.concat(chunks),
        secret: SECRET,
        deliveries,
      });
      if (out.submission) {
        const { task } = await service.submit(WEBHOOK_PRINCIPAL, out.submission, out.idempotencyKey);
        [status, body] = [201, task];
      } else [status, body] = [out.status, out.body];
    } catch (err) {
      ({ status, body } = toHttpError(err));
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () => new Promise<void>((r) => server.close(() => r())),
    () => store.close(),
    () => deliveries.close(),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/webhooks/github`,
    store,
    ready,
  };
}

const issuesLabeled = JSON.stringify({
  action: 'labeled',
  label: { name: 'autodev' },
  issue: {
    number: 3,
    title: 'Paginate the orders list',
    body: 'Use cursors.',
    html_url: 'https://github.com/acme/shop/issues/3',
    labels: [{ name: 'autodev' }],
  },
  repository: { full_name: 'acme/shop', clone_url: 'https://github.com/acme/shop.git' },
});

function post(url: string, body: string, headers: Record<string, string>) {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

describe('POST /v1/webhooks/github', () => {
  it('a signed delivery becomes a queued task; its replay does not make a second one', async () => {
    // Arrange
    const intake = await startIntake();
    const headers = {
      'x-github-event': 'issues',
      'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      'x-hub-signature-256': signGithubPayload(SECRET, issuesLabeled),
    };

    // Act
    const first = await post(intake.url, issuesLabeled, headers);
    const replay = await post(intake.url, issuesLabeled, headers);

    // Assert
    expect(first.status).toBe(201);
    const task = (await first.json()) as Task;
    expect(task).toMatchObject({
      tenant: 'acme',
      status: 'queued',
      repo: 'https://github.com/acme/shop.git',
      createdBy: 'github-webhook',
      labels: ['github:acme/shop#3', 'autodev'],
    });
    expect(task.prompt).toMatch(/^Paginate the orders list\n\nUse cursors\./);
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ ignored: 'replayed delivery' });
    expect((await intake.store.list('acme', { limit: 10 })).items).toHaveLength(1);
    expect(intake.ready).toHaveLength(1);
  });

  it('answers 401 to a delivery signed with another secret, and makes no task', async () => {
    const intake = await startIntake();
    const res = await post(intake.url, issuesLabeled, {
      'x-github-event': 'issues',
      'x-github-delivery': 'd-bad',
      'x-hub-signature-256': signGithubPayload('not-the-secret', issuesLabeled),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    expect((await intake.store.list('acme', { limit: 10 })).items).toEqual([]);
  });

  it('answers 401 when one byte of the signed body was changed on the way', async () => {
    const intake = await startIntake();
    const tampered = issuesLabeled.replace('acme/shop.git', 'evil/shop.git');
    const res = await post(intake.url, tampered, {
      'x-github-event': 'issues',
      'x-github-delivery': 'd-tampered',
      'x-hub-signature-256': signGithubPayload(SECRET, issuesLabeled),
    });
    expect(res.status).toBe(401);
  });
});
