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

/** The API as an attacker probes it: every answer is a clean 4xx, nothing loops, nothing reaches git. */
describe('the API door', () => {
  let server: RunningServer;
  let remote: string;
  let token: string;

  const api = (path: string, init: RequestInit = {}, bearer = token) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...init.headers },
    });

  beforeAll(async () => {
    const dir = tempDir('autodev-door-');
    remote = makeRemote(dir);
    // no executor: tasks stay queued, so a log follow never ends by itself
    server = await startServer(platformEnv(join(dir, 'home'), { AUTODEV_EXECUTOR: '0' }));
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
});
