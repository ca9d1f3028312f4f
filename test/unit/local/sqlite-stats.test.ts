import { describe, expect, it } from '@jest/globals';
import { newTaskId } from '../../../lib/core/ids.js';
import type { Attempt, Task } from '../../../lib/core/schemas.js';
import {
  computeStats,
  providerFigures,
  type TaskStats,
  windowStart,
  zeroCounts,
} from '../../../lib/core/stats.js';
import { SqliteTaskStats } from '../../../lib/local/sqlite-stats.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';
import { makeTask } from '../../support/tasks.js';

const NOW = new Date('2026-12-02T15:00:00Z');
const at = (iso: string) => Date.parse(iso);

function task(created: string, overrides: Partial<Task> = {}): Task {
  return makeTask({
    id: newTaskId(at(created)),
    createdAt: new Date(at(created)).toISOString(),
    updatedAt: new Date(at(created)).toISOString(),
    ...overrides,
  });
}

function attempt(provider: string, outcome: Attempt['outcome'], ms: number, costUsd: number): Attempt {
  const started = at('2026-12-02T10:00:00Z');
  return {
    number: 1,
    provider,
    startedAt: new Date(started).toISOString(),
    endedAt: outcome === 'running' ? undefined : new Date(started + ms).toISOString(),
    outcome,
    usage: { inputTokens: 10, outputTokens: 5, costUsd },
  };
}

async function storeWith(tasks: Task[]): Promise<SqliteTaskStore> {
  const store = new SqliteTaskStore(':memory:');
  for (const t of tasks) await store.create(t);
  return store;
}

/** Floating sums differ in their last bits with the order of addition. */
const rounded = (s: TaskStats) =>
  JSON.parse(JSON.stringify(s, (_k, v) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v)));

describe('GET /v1/stats on SQLite', () => {
  it('counts a day, its success rate, cost and nearest-rank p50/p95, and each provider per role', async () => {
    // Arrange
    const store = await storeWith([
      task('2026-12-02T08:00:00Z', {
        status: 'succeeded',
        durationMs: 1000,
        usage: { inputTokens: 1, outputTokens: 1, costUsd: 0.5 },
        attempts: [attempt('claude', 'succeeded', 1000, 0.5)],
      }),
      task('2026-12-02T09:00:00Z', {
        status: 'failed',
        durationMs: 3000,
        usage: { inputTokens: 1, outputTokens: 1, costUsd: 0.25 },
        attempts: [attempt('claude', 'failed', 2000, 0.25)],
      }),
      task('2026-12-02T10:00:00Z', { status: 'cancelled', durationMs: 2000 }),
      task('2026-12-02T11:00:00Z', { status: 'queued' }),
      task('2026-12-02T12:00:00Z', {
        status: 'running',
        provider: 'codex',
        role: 'docs',
        attempts: [attempt('codex', 'running', 0, 0)],
      }),
      task('2026-12-01T08:00:00Z', { status: 'succeeded', durationMs: 500, role: 'docs' }),
      task('2026-12-02T08:00:00Z', { tenant: 'globex', status: 'failed', durationMs: 9 }),
      task('2026-11-20T08:00:00Z', { status: 'failed', durationMs: 9 }),
    ]);
    // Act
    const stats = await new SqliteTaskStats(store.connection).stats('acme', { days: 2 }, NOW);
    // Assert
    expect(stats.since).toBe('2026-12-01');
    expect(stats.days).toEqual([
      {
        day: '2026-12-01',
        submitted: 1,
        succeeded: 1,
        failed: 0,
        cancelled: 0,
        successRate: 1,
        costUsd: 0,
        p50Ms: 500,
        p95Ms: 500,
      },
      {
        day: '2026-12-02',
        submitted: 5,
        succeeded: 1,
        failed: 1,
        cancelled: 1,
        successRate: 0.5,
        costUsd: 0.75,
        p50Ms: 2000,
        p95Ms: 3000,
      },
    ]);
    expect(stats.providers).toEqual([
      {
        provider: 'claude',
        role: 'backend',
        attempts: 2,
        succeeded: 1,
        successRate: 0.5,
        avgMs: 1500,
        costUsd: 0.75,
      },
      {
        provider: 'codex',
        role: 'docs',
        attempts: 1,
        succeeded: 0,
        successRate: null,
        avgMs: null,
        costUsd: 0,
      },
    ]);
    expect(stats.queue).toEqual({
      counts: { ...zeroCounts(), queued: 1, running: 1, succeeded: 2, failed: 2, cancelled: 1 },
      oldestQueuedAt: '2026-12-02T11:00:00.000Z',
      runningByRole: { docs: 1 },
      runningByProvider: { codex: 1 },
    });
    expect(stats.basis).toEqual({ kind: 'sql' });
  });

  it('gives the queue only for days=0', async () => {
    const store = await storeWith([task('2026-12-02T08:00:00Z', { status: 'queued' })]);
    const stats = await new SqliteTaskStats(store.connection).stats('acme', { days: 0 }, NOW);
    expect(stats.days).toEqual([]);
    expect(stats.providers).toEqual([]);
    expect(stats.queue.counts.queued).toBe(1);
  });

  it('agrees with the figures computed in memory (what the DynamoDB adapter uses)', async () => {
    // Arrange: a few hundred tasks over three weeks, some outside the window
    const statuses: Task['status'][] = ['succeeded', 'failed', 'cancelled', 'queued', 'running', 'retrying'];
    const tasks: Task[] = [];
    for (let i = 0; i < 300; i++) {
      const created = new Date(at('2026-12-02T14:00:00Z') - i * 6_000_000).toISOString();
      const status = statuses[(i * 7) % statuses.length] as Task['status'];
      const ended = ['succeeded', 'failed', 'cancelled'].includes(status);
      const provider = ['claude', 'codex', 'gemini'][i % 3] as string;
      tasks.push(
        task(created, {
          status,
          role: ['backend', 'docs'][i % 2] as string,
          provider: status === 'queued' ? undefined : provider,
          durationMs: ended ? (i * 7919) % 100_000 : undefined,
          usage: { inputTokens: i, outputTokens: i, costUsd: ((i * 13) % 50) / 100 },
          attempts:
            status === 'queued'
              ? []
              : [
                  attempt(
                    provider,
                    status === 'succeeded' ? 'succeeded' : 'failed',
                    (i * 104_729) % 50_000,
                    0.01 * (i % 9),
                  ),
                  ...(i % 4 === 0
                    ? [attempt('claude', status === 'running' ? 'running' : 'failed', 1234, 0.02)]
                    : []),
                ],
        }),
      );
    }
    const store = await storeWith(tasks);
    const query = { days: 14 };
    const since = windowStart(NOW, query.days).toISOString();
    // Act
    const sql = await new SqliteTaskStats(store.connection).stats('acme', query, NOW);
    const memory = computeStats({
      tenant: 'acme',
      now: NOW,
      query,
      window: tasks.filter((t) => t.createdAt >= since),
      counts: sql.queue.counts,
      current: tasks.filter((t) => t.status === 'queued' || t.status === 'running'),
      basis: { kind: 'sql' },
    });
    // Assert
    expect(sql.days.reduce((n, d) => n + d.submitted, 0)).toBeGreaterThan(100);
    expect(sql.days.reduce((n, d) => n + d.submitted, 0)).toBeLessThan(300);
    expect(rounded(sql)).toEqual(rounded(memory));
  });

  it('gives routing one role of the newest tasks, with failures that concern the provider and medians of successes', async () => {
    // Arrange: claude fails twice (once a workspace fault, which says nothing of it), codex succeeds three times
    const tasks = [
      task('2026-12-02T08:00:00Z', { attempts: [attempt('claude', 'failed', 500, 0.1)] }),
      task('2026-12-02T08:01:00Z', {
        attempts: [{ ...attempt('claude', 'failed', 500, 0), errorClass: 'workspace' }],
      }),
      task('2026-12-02T08:02:00Z', { attempts: [attempt('codex', 'succeeded', 3000, 0.3)] }),
      task('2026-12-02T08:03:00Z', { attempts: [attempt('codex', 'succeeded', 1000, 0.1)] }),
      task('2026-12-02T08:04:00Z', { attempts: [attempt('codex', 'succeeded', 2000, 0.2)] }),
      task('2026-12-02T08:05:00Z', { role: 'docs', attempts: [attempt('gemini', 'succeeded', 9, 9)] }),
      task('2026-11-01T08:00:00Z', { attempts: [attempt('aider', 'succeeded', 9, 9)] }),
    ];
    const stats = new SqliteTaskStats((await storeWith(tasks)).connection);
    // Act
    const all = await stats.providerStats('acme', { days: 7, role: 'backend' }, NOW);
    const newest = await stats.providerStats('acme', { days: 7, role: 'backend', limit: 2 }, NOW);
    // Assert
    expect(
      all.map((p) => [p.provider, p.attempts, p.succeeded, p.failed, p.medianMs, p.medianCostUsd]),
    ).toEqual([
      ['claude', 2, 0, 1, null, null],
      ['codex', 3, 3, 0, 2000, 0.2],
    ]);
    expect(rounded({ items: all } as unknown as TaskStats)).toEqual(
      rounded({ items: providerFigures(tasks.slice(0, 5)) } as unknown as TaskStats),
    );
    // the two newest: codex's 1000 ms and 2000 ms runs; the nearest-rank median is the lower
    expect(newest.map((p) => [p.provider, p.attempts, p.medianMs])).toEqual([['codex', 2, 1000]]);
  });
});
