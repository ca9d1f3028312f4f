import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
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
 * Fair admission through the public API: a real server, real git, the fake Claude Code (instant
 * unless told to sleep), a small number of slots; order read from the tasks' recorded start times.
 */

const dir = tempDir('autodev-fair-');
const repo = makeRemote(dir);
let server: RunningServer | undefined;

async function start(extra: Record<string, string>): Promise<RunningServer> {
  server = await startServer(
    platformEnv(join(dir, `home-${Date.now()}`), { AUTODEV_DRAIN_SECONDS: '0', ...extra }),
  );
  return server;
}

afterEach(async () => {
  await server?.stop('SIGKILL');
  server = undefined;
});
afterAll(async () => {
  await server?.stop('SIGKILL');
});

async function api<T>(s: RunningServer, tenant: string, method: string, path: string, body?: unknown) {
  const key = readSigningKey(join(s.env.AUTODEV_HOME as string, 'signing-key'));
  const token = await signLocalToken(key, { tenant, role: 'operator', subject: `${tenant}-op`, ttl: '10m' });
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const submit = (s: RunningServer, tenant: string, prompt: string, priority = 'normal') =>
  api<Task>(s, tenant, 'POST', '/v1/tasks', { repo, prompt, priority });
const get = (s: RunningServer, tenant: string, id: string) => api<Task>(s, tenant, 'GET', `/v1/tasks/${id}`);
const startedAt = (t: Task) => {
  const at = t.attempts[0]?.startedAt;
  return at ? Date.parse(at) : Number.POSITIVE_INFINITY;
};
const started = async (s: RunningServer, tenant: string, id: string) => {
  const t = await get(s, tenant, id);
  return t.attempts.length > 0 ? t : undefined;
};

async function allTasks(s: RunningServer, tenant: string): Promise<Task[]> {
  const items: Task[] = [];
  let cursor = '';
  do {
    const page = await api<{ items: Task[]; nextCursor?: string }>(
      s,
      tenant,
      'GET',
      `/v1/tasks?limit=500${cursor ? `&cursor=${cursor}` : ''}`,
    );
    items.push(...page.items);
    cursor = page.nextCursor ?? '';
  } while (cursor);
  return items;
}

describe('fair shares between tenants', () => {
  it('starts tenant B’s one task within one slot of its submission, behind tenant A’s 500', async () => {
    // Arrange: two slots, tenant A's burst of 500 submitted first
    const s = await start({ AUTODEV_CONCURRENCY: '2' });
    for (let i = 0; i < 500; i += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, j) => submit(s, 'tenant-a', `task ${i + j}`)));
    }
    // Act
    const single = await submit(s, 'tenant-b', 'the single task');
    const b = await until(() => started(s, 'tenant-b', single.id), 60_000, 'tenant B’s task to start');
    // Assert: at most one of A's tasks started between B's submission and B's start
    const a = await allTasks(s, 'tenant-a');
    expect(a).toHaveLength(500);
    const submittedAt = Date.parse(single.createdAt);
    const between = a.filter((t) => startedAt(t) >= submittedAt && startedAt(t) <= startedAt(b));
    expect(between.length).toBeLessThanOrEqual(1);
    expect(a.filter((t) => t.status === 'queued').length).toBeGreaterThan(400);
  }, 180_000);
});

describe('priorities within a tenant', () => {
  it('starts high, then normal, then low, whatever the order they were submitted in', async () => {
    // Arrange: the one slot busy
    const s = await start({ AUTODEV_CONCURRENCY: '1' });
    const blocker = await submit(s, 'acme', 'busy [fake:sleep=2500]');
    await until(() => started(s, 'acme', blocker.id), 30_000, 'the first task to start');
    // Act
    const low = await submit(s, 'acme', 'low', 'low');
    const normal = await submit(s, 'acme', 'normal', 'normal');
    const high = await submit(s, 'acme', 'high', 'high');
    const ended = await until(
      async () => {
        const all = await Promise.all([low, normal, high].map((t) => get(s, 'acme', t.id)));
        return all.every((t) => t.attempts.length > 0) && all;
      },
      60_000,
      'the three tasks to start',
    );
    // Assert
    const order = [...ended].sort((x, y) => startedAt(x) - startedAt(y)).map((t) => t.priority);
    expect(order).toEqual(['high', 'normal', 'low']);
  }, 120_000);

  it('ages a low task so that it starts while high tasks keep arriving faster than they start', async () => {
    // Arrange: one slot; priority rises one level a second
    const s = await start({ AUTODEV_CONCURRENCY: '1', AUTODEV_PRIORITY_AGING_SECONDS: '1' });
    const first = await submit(s, 'acme', 'busy [fake:sleep=1000]', 'high');
    await until(() => started(s, 'acme', first.id), 30_000, 'the first task to start');
    const low = await submit(s, 'acme', 'low', 'low');
    const highs: Task[] = [];
    // Act: two high tasks (each 400 ms of work) every 400 ms until the low one starts
    let lowTask: Task | undefined;
    const deadline = Date.now() + 40_000;
    while (!lowTask && Date.now() < deadline) {
      highs.push(await submit(s, 'acme', 'high [fake:sleep=400]', 'high'));
      highs.push(await submit(s, 'acme', 'high [fake:sleep=400]', 'high'));
      await new Promise((r) => setTimeout(r, 400));
      lowTask = await started(s, 'acme', low.id);
    }
    // Assert: it started, with high tasks submitted before it started still waiting
    expect(lowTask).toBeDefined();
    const lowStart = startedAt(lowTask as Task);
    const now = await Promise.all(highs.map((h) => get(s, 'acme', h.id)));
    const waitingBehind = now.filter((h) => Date.parse(h.createdAt) < lowStart && startedAt(h) > lowStart);
    expect(waitingBehind.length).toBeGreaterThan(0);
    // twice the aging step after it was submitted, give or take the slot it waited for
    expect(lowStart - Date.parse(low.createdAt)).toBeGreaterThanOrEqual(2000);
  }, 120_000);
});

describe('concurrency limits per agent role', () => {
  it('runs at most maxConcurrent tasks of a role at once, and other roles’ tasks beside them', async () => {
    // Arrange: three slots; the docs role limited to one at a time (roles.yaml)
    const home = join(dir, 'home-roles');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'roles.yaml'), 'roles:\n  docs:\n    maxConcurrent: 1\n');
    server = await startServer(platformEnv(home, { AUTODEV_CONCURRENCY: '3', AUTODEV_DRAIN_SECONDS: '0' }));
    const s = server;
    const body = (role: string) => ({ repo, prompt: `${role} [fake:sleep=1200]`, role });
    // Act
    const docs: Task[] = [];
    for (let i = 0; i < 3; i++) docs.push(await api<Task>(s, 'acme', 'POST', '/v1/tasks', body('docs')));
    const backend = await api<Task>(s, 'acme', 'POST', '/v1/tasks', body('backend'));
    const done = await until(
      async () => {
        const all = await Promise.all([...docs, backend].map((t) => get(s, 'acme', t.id)));
        return all.every((t) => t.status === 'succeeded') && all;
      },
      90_000,
      'the four tasks to succeed',
    );
    // Assert: the docs tasks ran one after another; the backend task ran while docs tasks waited
    const spans = done
      .slice(0, 3)
      .map((t) => [startedAt(t), Date.parse(t.attempts[0]?.endedAt ?? '')] as const);
    spans.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) {
      expect(spans[i]?.[0]).toBeGreaterThanOrEqual(spans[i - 1]?.[1] as number);
    }
    expect(startedAt(done[3] as Task)).toBeLessThan(spans[1]?.[0] as number);
  }, 120_000);
});
