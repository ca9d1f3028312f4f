import { randomBytes } from 'node:crypto';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStats } from '../../lib/aws/dynamo-task-stats.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { newTaskId } from '../../lib/core/ids.js';
import { transition } from '../../lib/core/lifecycle.js';
import { admitProvider, recordProviderResult } from '../../lib/core/provider-health.js';
import type { Task } from '../../lib/core/schemas.js';
import { SqliteTaskStats } from '../../lib/local/sqlite-stats.js';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { makeTask } from '../support/tasks.js';
import { taskStoreContract } from './task-store.contract.js';
import { tenantSpendContract } from './tenant-spend.contract.js';

let ddb: DynamoDbLocal;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);

afterAll(async () => {
  await ddb?.stop();
});

async function freshTable(): Promise<string> {
  const tableName = `tasks-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  return tableName;
}

/** A fresh, empty table per test: the contract's factory. */
async function freshStore(): Promise<DynamoTaskStore> {
  return new DynamoTaskStore({ client: ddb.client, tableName: await freshTable() });
}

taskStoreContract('DynamoDB', freshStore);
tenantSpendContract('DynamoDB', freshStore);

describe('DynamoTaskStore beyond the port', () => {
  it('lists tasks in one status across tenants for the reaper', async () => {
    // Arrange
    const store = await freshStore();
    const a = makeTask();
    const b = makeTask({ tenant: 'globex' });
    await store.create(a);
    await store.create(b);
    await store.create(makeTask());
    await store.put(transition(a, 'running', {}, new Date()), 0);
    await store.put(transition(b, 'running', {}, new Date()), 0);
    // Act
    const running = await store.listByStatus('running');
    // Assert
    expect(running.map((t) => t.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('shares provider health: concurrent dispatchers take exactly the tokens there are', async () => {
    // Arrange: two stores on one table stand for two workflow Lambdas
    const a = await freshStore();
    const b = new DynamoTaskStore({
      client: ddb.client,
      tableName: (a as unknown as { table: string }).table,
    });
    const breaker = { failureThreshold: 2, windowMs: 10_000, openMs: 5_000 };
    const slow = { ratePerSecond: 0.001, burst: 5 };
    // Act
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => admitProvider(i % 2 ? a : b, 'codex', 1000, breaker, slow)),
    );
    // Assert
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    const state = await recordProviderResult(a, 'codex', false, 'crash', 1000, breaker, slow);
    expect(state.breaker.failures).toEqual([1000]);
    expect((await b.listProviderStates()).map((s) => s.provider)).toEqual(['codex']);
  });

  it('keeps the first attempt report when the worker writes it twice', async () => {
    const store = await freshStore();
    await store.putAttemptReport('t1', 1, { ok: true });
    await store.putAttemptReport('t1', 1, { ok: false });
    expect(await store.getAttemptReport('t1', 1)).toEqual({ ok: true });
    expect(await store.getAttemptReport('t1', 2)).toBeUndefined();
  });

  it('numbers log lines without gaps across concurrent appends', async () => {
    const store = await freshStore();
    await Promise.all([
      store.appendLogs('t2', ['a', 'b', 'c'], new Date()),
      store.appendLogs('t2', ['d', 'e'], new Date()),
    ]);
    const { lines, lastSeq } = await store.readLogs('t2', 0, 100);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(lastSeq).toBe(5);
  });
});

describe('GET /v1/stats on DynamoDB', () => {
  const now = new Date();
  const day = 86_400_000;
  async function storeWith(): Promise<{ tableName: string; store: DynamoTaskStore }> {
    const tableName = await freshTable();
    const store = new DynamoTaskStore({ client: ddb.client, tableName });
    const specs: [number, Partial<Task>][] = [
      [
        0,
        { status: 'succeeded', durationMs: 1000, usage: { inputTokens: 1, outputTokens: 1, costUsd: 0.5 } },
      ],
      [0, { status: 'failed', durationMs: 3000 }],
      [1, { status: 'succeeded', durationMs: 500 }],
      [2, { status: 'queued' }],
      [40, { status: 'failed', durationMs: 9 }],
    ];
    for (const [ago, overrides] of specs) {
      const created = now.getTime() - ago * day - 1000;
      await store.create(
        makeTask({ id: newTaskId(created), createdAt: new Date(created).toISOString(), ...overrides }),
      );
    }
    await store.create(makeTask({ tenant: 'globex', status: 'failed' }));
    return { tableName, store };
  }

  it('gives the figures SQLite gives, from a bounded read of the tenant', async () => {
    // Arrange: the same tasks in both stores
    const { tableName, store } = await storeWith();
    const sqlite = new SqliteTaskStore(':memory:');
    for (const t of (await store.list('acme', { limit: 100 })).items) await sqlite.create(t);
    // Act
    const dynamo = await new DynamoTaskStats({ client: ddb.client, tableName }).stats(
      'acme',
      { days: 7 },
      now,
    );
    const sql = await new SqliteTaskStats(sqlite.connection).stats('acme', { days: 7 }, now);
    // Assert
    expect({ ...dynamo, basis: undefined }).toEqual({ ...sql, basis: undefined });
    expect(dynamo.basis).toEqual({ kind: 'scan', scanned: 5, scanLimit: 5000, truncated: false });
    expect(dynamo.days.reduce((n, d) => n + d.submitted, 0)).toBe(4);
    expect(dynamo.queue.counts.failed).toBe(2);
  });

  it('says when the tenant has more tasks than it read', async () => {
    const { tableName } = await storeWith();
    const stats = await new DynamoTaskStats({ client: ddb.client, tableName, scanLimit: 3 }).stats(
      'acme',
      { days: 7 },
      now,
    );
    expect(stats.basis).toEqual({ kind: 'scan', scanned: 3, scanLimit: 3, truncated: true });
  });
});

/** Floating sums differ in their last bits with the order of addition. */
const rounded = (x: unknown) =>
  JSON.parse(JSON.stringify(x, (_k, v) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v)));

describe('routing figures (providerStats) on DynamoDB', () => {
  it("gives SQLite's figures for one role of the window's newest tasks, read as a key range", async () => {
    // Arrange: the same attempts in both stores, over 10 days, two roles, another tenant
    const now = new Date();
    const tableName = await freshTable();
    const store = new DynamoTaskStore({ client: ddb.client, tableName });
    const sqlite = new SqliteTaskStore(':memory:');
    for (let i = 0; i < 24; i++) {
      const created = now.getTime() - i * 10 * 3_600_000 - 1000;
      const startedAt = new Date(created + 1000).toISOString();
      const provider = ['claude', 'codex', 'gemini'][i % 3] as string;
      const outcome = i % 4 === 0 ? ('failed' as const) : ('succeeded' as const);
      const t = makeTask({
        id: newTaskId(created),
        tenant: i % 5 === 4 ? 'globex' : 'acme',
        role: i % 2 === 0 ? 'backend' : 'docs',
        createdAt: new Date(created).toISOString(),
        attempts: [
          {
            number: 1,
            provider,
            startedAt,
            endedAt: new Date(created + 1000 + ((i * 7919) % 60_000)).toISOString(),
            outcome,
            ...(outcome === 'failed' ? { errorClass: 'crash' as const } : {}),
            usage: { inputTokens: 1, outputTokens: 1, costUsd: (i % 7) / 10 },
          },
        ],
      });
      await store.create(t);
      await sqlite.create(t);
    }
    const dynamo = new DynamoTaskStats({ client: ddb.client, tableName });
    const sql = new SqliteTaskStats(sqlite.connection);
    // Act + Assert: a window, a role, and a cap on the newest tasks read
    for (const query of [{ days: 3 }, { days: 7, role: 'backend' }, { days: 7, role: 'backend', limit: 5 }]) {
      const fromDynamo = await dynamo.providerStats('acme', query, now);
      expect(fromDynamo.length).toBeGreaterThan(0);
      expect(rounded(fromDynamo)).toEqual(rounded(await sql.providerStats('acme', query, now)));
    }
  });
});

describe('DynamoTaskStore retention (DynamoDB TTL)', () => {
  const ttlOf = async (store: DynamoTaskStore, pk: string, sk: string) => {
    const res = await ddb.client.send(
      new GetItemCommand({
        TableName: (store as unknown as { table: string }).table,
        Key: { pk: { S: pk }, sk: { S: sk } },
      }),
    );
    return res.Item?.ttl?.N === undefined ? undefined : Number(res.Item.ttl.N);
  };

  it('sets a TTL on a finished task (its end plus the retention) and on log lines, never on a task not finished', async () => {
    // Arrange
    const store = new DynamoTaskStore({
      client: ddb.client,
      tableName: await freshTable(),
      retentionSeconds: 7 * 86_400,
    });
    const task = makeTask();
    await store.create(task);
    const running = transition(task, 'running', {}, new Date());
    await store.put(running, 0);
    const at = new Date('2026-06-01T00:00:00.000Z');
    await store.appendLogs(task.id, ['one'], at);
    // Act
    const before = await ttlOf(store, `TASK#${task.id}`, 'TASK');
    const ended = { ...transition(running, 'failed', {}, new Date()), updatedAt: '2026-06-02T00:00:00.000Z' };
    await store.put(ended, 1);
    const after = await ttlOf(store, `TASK#${task.id}`, 'TASK');
    const retried = transition(ended, 'queued', {}, new Date());
    await store.put(retried, 2);
    // Assert
    expect(before).toBeUndefined();
    expect(after).toBe(Date.parse('2026-06-02T00:00:00.000Z') / 1000 + 7 * 86_400);
    expect(await ttlOf(store, `TASK#${task.id}`, 'TASK')).toBeUndefined();
    expect(await ttlOf(store, `LOG#${task.id}`, 'L#0000000001')).toBe(at.getTime() / 1000 + 7 * 86_400);
  });

  it('sets no TTL without a retention', async () => {
    const store = await freshStore();
    const task = makeTask();
    await store.create(task);
    await store.put(transition(task, 'cancelled', {}, new Date()), 0);
    expect(await ttlOf(store, `TASK#${task.id}`, 'TASK')).toBeUndefined();
  });
});
