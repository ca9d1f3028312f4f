import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { reap } from '../../lib/aws/reaper.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { transition } from '../../lib/core/lifecycle.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
import type { Task } from '../../lib/core/schemas.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { makeTask } from '../support/tasks.js';

let ddb: DynamoDbLocal;
beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);
afterAll(async () => ddb?.stop());

const NOW = new Date('2026-12-02T10:00:00Z');
const attempt = { number: 1, provider: 'claude', startedAt: NOW.toISOString(), outcome: 'running' as const };

/** A store on a fresh table whose byLease queries read `pageSize` items a page, counting its Query calls. */
async function pagedStore(pageSize: number): Promise<{ store: DynamoTaskStore; queries: () => number }> {
  const tableName = `tasks-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  const client = new DynamoDBClient({
    endpoint: ddb.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  let queries = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'QueryCommand') queries++;
      return next(args);
    },
    { step: 'initialize' },
  );
  return {
    store: new DynamoTaskStore({ client, tableName, leasePageSize: pageSize }),
    queries: () => queries,
  };
}

/** Stores a task in `status` with a lease that expires `expiresInMs` after NOW. */
async function withLease(
  store: DynamoTaskStore,
  status: 'running' | 'retrying',
  expiresInMs: number,
): Promise<Task> {
  const task = makeTask();
  await store.create(task);
  const lease = { owner: `${task.id}-1`, expiresAt: NOW.getTime() + expiresInMs };
  const running = transition(task, 'running', { attempts: [attempt], lease }, NOW);
  const stored =
    status === 'running'
      ? running
      : transition(
          { ...running, attempts: [{ ...attempt, outcome: 'failed' as const }] },
          'retrying',
          { lease },
          NOW,
        );
  // one write from the created task, whichever way it went
  const written = { ...stored, version: 1 };
  await store.put(written, 0);
  return written;
}

describe('the byLease index (expired leases at any table size)', () => {
  it('finds every expired lease across shards and pages, and no live one or lease-less task', async () => {
    // Arrange: 24 expired running, 6 expired retrying, 8 live, 5 queued, 3 ended; 2 items a page
    const { store, queries } = await pagedStore(2);
    const expired: Task[] = [];
    for (let i = 0; i < 24; i++) expired.push(await withLease(store, 'running', -1000 - i));
    for (let i = 0; i < 6; i++) expired.push(await withLease(store, 'retrying', -5000 - i));
    for (let i = 0; i < 8; i++) await withLease(store, 'running', 60_000);
    for (let i = 0; i < 5; i++) await store.create(makeTask());
    for (let i = 0; i < 3; i++) {
      const t = await withLease(store, 'running', -1000);
      await store.put(transition({ ...t, lease: undefined }, 'succeeded', {}, NOW), t.version);
    }
    // Act
    const before = queries();
    const found = await store.listExpiredLeases(NOW);
    // Assert: all 30, read 2 a page (at least 15 pages over the shards)
    expect(found.map((t) => t.id).sort()).toEqual(expired.map((t) => t.id).sort());
    expect(queries() - before).toBeGreaterThanOrEqual(30 / 2);
  });

  it('lets the reaper re-queue every expired task, not the first page of them', async () => {
    // Arrange
    const { store } = await pagedStore(3);
    const expired: Task[] = [];
    for (let i = 0; i < 20; i++) expired.push(await withLease(store, 'running', -1000));
    const live = await withLease(store, 'running', 60_000);
    // Act
    const report = await reap({
      store,
      notifier: { taskReady: async () => undefined },
      roles: BUILT_IN_ROLES,
      now: () => NOW,
    });
    // Assert
    expect(report.requeued).toBe(20);
    for (const t of expired) expect((await store.getById(t.id))?.status).toBe('queued');
    expect((await store.getById(live.id))?.status).toBe('running');
    // a re-queued task holds no lease, so it leaves the index
    const later = new Date(NOW.getTime() + 3_600_000);
    expect((await store.listExpiredLeases(later)).map((t) => t.id)).toEqual([live.id]);
  });
});
