import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/**
 * The breaker test: one tenant's tasks on a repository that does not exist fail with `workspace`,
 * leave every provider's circuit breaker closed and its rate untouched, and another tenant's task
 * starts at once.
 */
describe('faults where they belong: a missing repository is a workspace fault, not a provider one', () => {
  let dir: string;
  let remote: string;
  let server: RunningServer;
  const tokens: Record<string, string> = {};

  const api = async (tenant: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${tokens[tenant]}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const task = async (tenant: string, id: string) => (await api(tenant, `/v1/tasks/${id}`)).json as Task;

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_CONCURRENCY: '4',
        // a breaker that opens after 2 failures, and a rate that 6 uncounted admissions would use up
        AUTODEV_BREAKER_FAILURES: '2',
        AUTODEV_BREAKER_OPEN_SECONDS: '600',
        AUTODEV_PROVIDER_RATE: '0.05',
        AUTODEV_PROVIDER_BURST: '4',
        CODEX_API_KEY: 'sk-test-codex',
        GEMINI_API_KEY: 'test-gemini-key',
      }),
    );
    for (const tenant of ['noisy', 'quiet']) {
      const t = await cli(['token', '--tenant', tenant, '--role', 'operator'], server.env);
      expect(t.code).toBe(0);
      tokens[tenant] = t.stdout.trim();
    }
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('fails each task with `workspace`, keeps every breaker closed, and lets another tenant start at once', async () => {
    // Arrange: six tasks on a repository that does not exist
    const missing = join(dir, 'no-such-repository.git');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await api('noisy', '/v1/tasks', { repo: missing, prompt: `task ${i} [fake:edit=N${i}.md]` });
      expect(r.status).toBe(201);
      ids.push(r.json.id as string);
    }
    // Act
    const ended = await until(
      async () => {
        const all = await Promise.all(ids.map((id) => task('noisy', id)));
        return all.every((t) => t.status === 'failed' || t.status === 'succeeded') && all;
      },
      30_000,
      'the noisy tenant’s tasks to end',
    );
    // Assert: a clear workspace failure, one attempt each, no provider blamed
    for (const t of ended) {
      expect(t.status).toBe('failed');
      expect(t.error?.code).toBe('workspace');
      expect(t.error?.message).toContain(`The repository ${missing} does not exist or cannot be reached`);
      expect(t.attempts).toHaveLength(1);
      expect(t.attempts[0]?.errorClass).toBe('workspace');
    }
    const providers = (await api('quiet', '/v1/providers')).json.items as { name: string; breaker: string }[];
    expect(providers.length).toBeGreaterThan(0);
    for (const p of providers)
      expect({ name: p.name, breaker: p.breaker }).toEqual({ name: p.name, breaker: 'closed' });

    // Act: another tenant's task on a real repository starts at once and succeeds
    const submitted = Date.now();
    const r = await api('quiet', '/v1/tasks', { repo: remote, prompt: 'Add notes [fake:edit=NOTES.md]' });
    expect(r.status).toBe(201);
    const done = await until(
      async () => {
        const t = await task('quiet', r.json.id as string);
        return (t.status === 'succeeded' || t.status === 'failed') && t;
      },
      20_000,
      'the quiet tenant’s task to end',
    );
    // Assert
    expect(done.error).toBeUndefined();
    expect(done.status).toBe('succeeded');
    expect(Date.parse(done.attempts[0]?.startedAt ?? '') - submitted).toBeLessThan(3000);
    expect(gitIn(remote, ['rev-parse', '--verify', `refs/heads/${done.branch}`]).trim()).toBe(done.commit);
  }, 60_000);
});
