import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { signGithubPayload } from '../../lib/core/webhooks.js';
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
  let token: string;
  const WEBHOOK_SECRET = 'door-webhook-secret';

  const api = (path: string, init: RequestInit = {}, bearer = token) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...init.headers },
    });

  beforeAll(async () => {
    const dir = tempDir('autodev-door-');
    remote = makeRemote(dir);
    // no executor: tasks stay queued, so a log follow never ends by itself
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        AUTODEV_GITHUB_WEBHOOK_TENANT: 'acme',
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
});
