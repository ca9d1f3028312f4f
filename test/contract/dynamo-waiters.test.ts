import { randomBytes } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import {
  DynamoProviderWaiters,
  type TaskCallbacks,
  type Waiter,
  wakeWaiters,
} from '../../lib/aws/provider-waiters.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { admitProviderSlot, freeSlots, releaseSlot, slotKey } from '../../lib/core/provider-slots.js';
import { waiterKey } from '../../lib/core/slot-handoff.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';

let ddb: DynamoDbLocal;
beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);
afterAll(async () => ddb?.stop());

const NOW = Date.parse('2026-12-02T10:00:00Z');
const limits = { ratePerSecond: 100, burst: 100, concurrency: 2 };
const EXPIRES = new Date(NOW + 86_400_000);

/** Resumes every token it is given, recording the order; tokens in `gone` no longer wait. */
class RecordingCallbacks implements TaskCallbacks {
  resumed: string[] = [];
  gone = new Set<string>();
  async resume(token: string): Promise<'resumed' | 'gone'> {
    if (this.gone.has(token)) return 'gone';
    this.resumed.push(token);
    return 'resumed';
  }
}

async function setup() {
  const tableName = `tasks-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  const store = new DynamoTaskStore({ client: ddb.client, tableName });
  const waiters = new DynamoProviderWaiters(ddb.client, tableName);
  const callbacks = new RecordingCallbacks();
  const deps = { health: store, waiters, callbacks, limits: () => limits };
  return { store, waiters, callbacks, deps };
}

function waiter(tenant: string, i: number, priority: 'high' | 'normal' | 'low' = 'normal'): Waiter {
  const id = `${tenant}-${String(i).padStart(4, '0')}`;
  const createdAt = new Date(NOW - 3_600_000 + i * 1000).toISOString();
  return {
    key: waiterKey({ id, priority, createdAt }),
    taskId: id,
    tenant,
    executionName: `${id}-1-v1`,
    taskToken: `token-${id}`,
  };
}

describe('parked tasks in DynamoDB (DynamoDB Local)', () => {
  it('wakes the one task tenant b parked before the 500 tenant a parked first, at the first freed slot', async () => {
    // Arrange: tenant a's tasks hold both slots and 500 more are parked; then b parks one
    const { store, waiters, callbacks, deps } = await setup();
    for (const id of ['a-run0', 'a-run1'])
      await admitProviderSlot(store, 'claude', slotKey(id, 1), NOW, NOW + 3_600_000, limits, undefined, 'a');
    for (let i = 0; i < 500; i++) await waiters.add('claude', waiter('a', i), EXPIRES);
    await waiters.add('claude', waiter('b', 0), EXPIRES);
    // Act: one slot frees
    const woken = await wakeWaiters(deps, 'claude', NOW + 1000, (s) =>
      releaseSlot(s, slotKey('a-run0', 1), NOW + 1000),
    );
    // Assert: b's task was woken, with the slot reserved for it; a's waiters all still parked
    expect(woken).toBe(1);
    expect(callbacks.resumed).toEqual(['token-b-0000']);
    const state = await store.getProviderState('claude');
    expect(Object.keys(state?.reserved ?? {})).toEqual(['b-0000']);
    expect(freeSlots(state, NOW + 1000, limits)).toBe(0);
    expect(await waiters.heads('claude', 'b', 5)).toEqual([]);
    expect(await waiters.heads('claude', 'a', 1)).toEqual([waiter('a', 0)]);

    // Act: the next freed slot goes back to a, oldest first
    const next = await wakeWaiters(deps, 'claude', NOW + 2000, (s) =>
      releaseSlot(s, slotKey('a-run1', 1), NOW + 2000),
    );
    expect(next).toBe(1);
    expect(callbacks.resumed).toEqual(['token-b-0000', 'token-a-0000']);
    expect(Object.keys((await store.getProviderState('claude'))?.reserved ?? {}).sort()).toEqual([
      'a-0000',
      'b-0000',
    ]);
  }, 120_000);

  it('hands the slot of a waiter whose execution no longer waits to the next one, and removes the stale waiter', async () => {
    const { store, waiters, callbacks, deps } = await setup();
    await waiters.add('claude', waiter('a', 0, 'high'), EXPIRES);
    await waiters.add('claude', waiter('a', 1), EXPIRES);
    callbacks.gone.add('token-a-0000');
    // Act: a provider with two free slots and nobody holding them (the reaper's pass)
    const woken = await wakeWaiters(deps, 'claude', NOW);
    // Assert
    expect(woken).toBe(1);
    expect(callbacks.resumed).toEqual(['token-a-0001']);
    expect(Object.keys((await store.getProviderState('claude'))?.reserved ?? {})).toEqual(['a-0001']);
    expect(await waiters.heads('claude', 'a', 5)).toEqual([]);
  }, 60_000);

  it('takes a waiter only while it holds the token it was woken with (a task parked anew stays parked)', async () => {
    const { waiters } = await setup();
    const first = waiter('a', 0);
    await waiters.add('claude', first, EXPIRES);
    const again = { ...first, taskToken: 'token-new' };
    await waiters.add('claude', again, EXPIRES);
    expect(await waiters.take('claude', first)).toBe(false);
    expect(await waiters.heads('claude', 'a', 5)).toEqual([again]);
    expect(await waiters.take('claude', again)).toBe(true);
  }, 60_000);
});
