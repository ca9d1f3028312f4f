import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ProviderStateStore } from '../core/provider-health.js';
import { freeSlots, type ProviderLimits } from '../core/provider-slots.js';
import type { Task } from '../core/schemas.js';

/** A workflow execution parked until a provider has a free slot (a `.waitForTaskToken` state). */
export interface Waiter {
  /** Orders waiters: priority, then the task's creation time, then its id (one item per task). */
  key: string;
  taskId: string;
  executionName: string;
  taskToken: string;
}

/** Where parked executions wait, per provider, oldest first. */
export interface ProviderWaiters {
  /** Adds the waiter, or replaces the same task's earlier one (same key). */
  add(provider: string, waiter: Waiter, expiresAt: Date): Promise<void>;
  /** Up to `limit` waiters in order, after `afterKey`. */
  oldest(provider: string, limit: number, afterKey?: string): Promise<Waiter[]>;
  /** Removes the waiter; false when another waker already took it. */
  take(provider: string, key: string): Promise<boolean>;
}

/** Resumes a parked execution: 'gone' when its token is no longer waited on (it timed out or ended). */
export interface TaskCallbacks {
  resume(taskToken: string): Promise<'resumed' | 'gone'>;
}

const PRIORITY_RANK: Record<Task['priority'], number> = { high: 0, normal: 1, low: 2 };

/** The waiter order of a task: higher priority first, then older tasks first. */
export function waiterKey(task: Pick<Task, 'id' | 'priority' | 'createdAt'>): string {
  const created = String(Date.parse(task.createdAt)).padStart(15, '0');
  return `${PRIORITY_RANK[task.priority] ?? 1}#${created}#${task.id}`;
}

const waitPk = (provider: string) => `WAIT#${provider}`;

/** Waiters as items of the tasks table: `WAIT#<provider>` / `<key>` + taskId, executionName, taskToken, ttl. */
export class DynamoProviderWaiters implements ProviderWaiters {
  private readonly doc: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
  }

  async add(provider: string, w: Waiter, expiresAt: Date): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: waitPk(provider), sk: w.key, ...w, ttl: Math.ceil(expiresAt.getTime() / 1000) },
      }),
    );
  }

  async oldest(provider: string, limit: number, afterKey?: string): Promise<Waiter[]> {
    const res = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': waitPk(provider) },
        ConsistentRead: true,
        Limit: limit,
        ...(afterKey ? { ExclusiveStartKey: { pk: waitPk(provider), sk: afterKey } } : {}),
      }),
    );
    return (res.Items ?? []).map((i) => ({
      key: String(i.sk),
      taskId: String(i.taskId),
      executionName: String(i.executionName),
      taskToken: String(i.taskToken),
    }));
  }

  async take(provider: string, key: string): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: waitPk(provider), sk: key },
          ConditionExpression: 'attribute_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }
}

/** SendTaskSuccess on the parked state's token. */
export class SfnTaskCallbacks implements TaskCallbacks {
  constructor(private readonly sfn: SFNClient) {}

  async resume(taskToken: string): Promise<'resumed' | 'gone'> {
    try {
      await this.sfn.send(new SendTaskSuccessCommand({ taskToken, output: '{}' }));
      return 'resumed';
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'TaskTimedOut' || name === 'InvalidToken' || name === 'TaskDoesNotExist') return 'gone';
      throw err;
    }
  }
}

export interface WakeDeps {
  health: ProviderStateStore;
  waiters: ProviderWaiters;
  callbacks: TaskCallbacks;
  limits: (provider: string) => ProviderLimits;
}

/**
 * A slot may have freed on `provider`: resumes as many of its oldest waiters as it has free slots.
 * A woken execution prepares its attempt again (and parks again if another took the slot first).
 * Waiters whose execution no longer waits are dropped on the way. Returns how many it resumed.
 */
export async function wakeWaiters(deps: WakeDeps, provider: string, now: number): Promise<number> {
  const free = freeSlots(await deps.health.getProviderState(provider), now, deps.limits(provider));
  let woken = 0;
  let after: string | undefined;
  while (woken < free) {
    const page = await deps.waiters.oldest(provider, free - woken, after);
    if (page.length === 0) break;
    for (const w of page) {
      after = w.key;
      if (!(await deps.waiters.take(provider, w.key))) continue;
      if ((await deps.callbacks.resume(w.taskToken)) === 'resumed') woken++;
    }
  }
  return woken;
}

/** Wakes the waiters of every provider that has free slots (the reaper's pass). */
export async function wakeAllProviders(deps: WakeDeps, now: number): Promise<number> {
  let woken = 0;
  for (const state of await deps.health.listProviderStates())
    woken += await wakeWaiters(deps, state.provider, now);
  return woken;
}
