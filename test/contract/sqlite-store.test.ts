import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { newTaskId } from '../../lib/core/ids.js';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { makeTask } from '../support/tasks.js';
import { taskStoreContract } from './task-store.contract.js';
import { tenantSpendContract } from './tenant-spend.contract.js';

const freshFile = () => join(mkdtempSync(join(tmpdir(), 'autodev-store-')), 'autodev.db');

taskStoreContract('SQLite', async () => new SqliteTaskStore(freshFile()));
tenantSpendContract('SQLite', async () => new SqliteTaskStore(freshFile()));

describe('SqliteTaskStore as the local queue', () => {
  it('claims the most urgent ready task once, across two connections to one file', async () => {
    // Arrange: two stores on one file stand for two server processes
    const file = freshFile();
    const a = new SqliteTaskStore(file);
    const b = new SqliteTaskStore(file);
    const low = makeTask({ priority: 'low' });
    const high = makeTask({ priority: 'high' });
    await a.create(low);
    await a.create(high);
    // Act
    const first = await a.claimNext('a', 10_000, new Date());
    const second = await b.claimNext('b', 10_000, new Date());
    const third = await a.claimNext('a', 10_000, new Date());
    // Assert
    expect(first?.id).toBe(high.id);
    expect(first?.lease?.owner).toBe('a');
    expect(second?.id).toBe(low.id);
    expect(third).toBeUndefined();
    expect((await a.listRunning()).map((t) => t.id).sort()).toEqual([high.id, low.id].sort());
  });

  it('does not claim a retrying task before its notBefore', async () => {
    const store = new SqliteTaskStore(freshFile());
    const later = Date.now() + 60_000;
    await store.create(makeTask({ status: 'retrying', notBefore: later }));
    expect(await store.claimNext('a', 1000, new Date())).toBeUndefined();
    expect(await store.nextWakeAt()).toBe(later);
    expect((await store.claimNext('a', 1000, new Date(later + 1)))?.status).toBe('running');
  });
});

describe('SqliteTaskStore: the heads of the ready queues', () => {
  it('returns each tenant’s oldest queued task per role and priority, and retrying tasks now due', async () => {
    // Arrange
    const store = new SqliteTaskStore(freshFile());
    const t = (tenant: string, priority: 'high' | 'normal' | 'low', role = 'backend', extra = {}) =>
      makeTask({ tenant, priority, role, ...extra });
    const acmeNormal = [
      t('acme', 'normal', 'backend', { id: newTaskId(Date.now() - 10) }),
      t('acme', 'normal', 'backend', { id: newTaskId(Date.now() - 5) }),
    ];
    const acmeLow = t('acme', 'low');
    const acmeDocs = t('acme', 'normal', 'docs');
    const globexHigh = t('globex', 'high');
    const due = t('globex', 'low', 'backend', { status: 'retrying', notBefore: Date.now() - 1 });
    const notDue = t('globex', 'low', 'backend', { status: 'retrying', notBefore: Date.now() + 60_000 });
    const running = t('initech', 'high', 'backend', { status: 'running' });
    for (const task of [...acmeNormal, acmeLow, acmeDocs, globexHigh, due, notDue, running]) {
      await store.create(task);
    }
    // Act
    const heads = await store.readyHeads(new Date());
    // Assert
    expect(heads.map((h) => h.id).sort()).toEqual(
      [acmeNormal[0]?.id, acmeLow.id, acmeDocs.id, globexHigh.id, due.id].sort(),
    );
  });

  it('claims a named task only while it is ready, once', async () => {
    const store = new SqliteTaskStore(freshFile());
    const task = makeTask();
    await store.create(task);
    const first = await store.claim(task.id, 'a', 10_000, new Date());
    const second = await store.claim(task.id, 'b', 10_000, new Date());
    expect(first?.status).toBe('running');
    expect(first?.lease?.owner).toBe('a');
    expect(second).toBeUndefined();
  });

  it('finds the heads among 10,000 queued tasks of 20 tenants in a few milliseconds', async () => {
    // Arrange
    const store = new SqliteTaskStore(freshFile());
    const priorities = ['high', 'normal', 'low'] as const;
    store.connection.transaction(() => {
      for (let i = 0; i < 10_000; i++) {
        void store.create(
          makeTask({
            tenant: `tenant${i % 20}`,
            priority: priorities[i % 3],
            role: Math.floor(i / 20) % 2 ? 'backend' : 'docs',
          }),
        );
      }
    })();
    await store.readyHeads(new Date());
    // Act
    const started = performance.now();
    const heads = await store.readyHeads(new Date());
    const ms = performance.now() - started;
    // Assert: 20 tenants × 2 roles × 3 priorities
    expect(heads).toHaveLength(120);
    expect(ms).toBeLessThan(50);
    const plan = store.connection
      .prepare(
        `EXPLAIN QUERY PLAN SELECT tenant, role, priority_rank, data FROM tasks
         WHERE status = 'queued' AND (tenant, role, priority_rank) > (?, ?, ?)
         ORDER BY tenant, role, priority_rank, id LIMIT 1`,
      )
      .all('', '', -1) as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/USING INDEX tasks_heads/);
  });
});

describe('SqliteTaskStore retention sweep', () => {
  it('deletes tasks that finished before the cutoff with their logs and keys, never a task not finished', async () => {
    // Arrange
    const store = new SqliteTaskStore(freshFile());
    const old = '2026-01-01T00:00:00.000Z';
    const oldDone = makeTask({ status: 'succeeded', updatedAt: old });
    const oldQueued = makeTask({ updatedAt: old });
    const oldRunning = makeTask({ status: 'running', updatedAt: old });
    const freshDone = makeTask({ status: 'failed' });
    await store.create(oldDone, { key: 'acme#k', bodyHash: 'h', ttlSeconds: 3600 });
    for (const t of [oldQueued, oldRunning, freshDone]) await store.create(t);
    for (const t of [oldDone, oldQueued, freshDone]) await store.appendLogs(t.id, ['a', 'b'], new Date(old));
    // Act
    const swept = store.sweepFinishedBefore('2026-02-01T00:00:00.000Z');
    // Assert
    expect(swept).toEqual({ tasks: 1, logLines: 2, idempotencyKeys: 1 });
    expect(await store.get('acme', oldDone.id)).toBeUndefined();
    expect((await store.readLogs(oldDone.id, 0, 10)).lines).toEqual([]);
    for (const kept of [oldQueued, oldRunning, freshDone])
      expect(await store.get('acme', kept.id)).toEqual(kept);
    expect((await store.readLogs(oldQueued.id, 0, 10)).lines).toHaveLength(2);
    expect((await store.create(makeTask(), { key: 'acme#k', bodyHash: 'h2', ttlSeconds: 60 })).created).toBe(
      true,
    );
  });
});
