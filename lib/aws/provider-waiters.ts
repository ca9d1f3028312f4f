import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { INITIAL_FAIR_SHARE_STATE, tenantOrder } from '../core/fair-share.js';
import {
  initialProviderState,
  type ProviderState,
  type ProviderStateStore,
  updateProviderState,
} from '../core/provider-health.js';
import { freeSlots, liveReservations, type ProviderLimits } from '../core/provider-slots.js';
import { handOffSlots, type ParkedTask, parkedTaskOf, unreserve } from '../core/slot-handoff.js';

/** A workflow execution parked until a provider has a free slot (a `.waitForTaskToken` state). */
export interface Waiter {
  /** Orders a tenant's waiters (core `waiterKey`): priority, then creation time, then task id. */
  key: string;
  taskId: string;
  tenant: string;
  executionName: string;
  taskToken: string;
}

/** A tenant with waiters on a provider; `mark` changes each time one of its waiters is added. */
export interface WaitingTenant {
  tenant: string;
  mark: string;
}

/** Where parked executions wait: per provider, one queue per tenant, in `waiterKey` order. */
export interface ProviderWaiters {
  /** Adds the waiter (then its tenant to the provider's list), or replaces the same task's earlier one. */
  add(provider: string, waiter: Waiter, expiresAt: Date): Promise<void>;
  /** The tenants with waiters on the provider. */
  tenants(provider: string): Promise<WaitingTenant[]>;
  /** The tenant's first waiters of each priority, up to `limit` of each (so aging can be applied). */
  heads(provider: string, tenant: string, limit: number): Promise<Waiter[]>;
  /** Drops a tenant found with no waiters from the list, unless a waiter was added since `mark`. */
  forget(provider: string, tenant: WaitingTenant): Promise<void>;
  /** Removes the waiter if it still holds its token; false when it was taken or parked anew. */
  take(provider: string, waiter: Waiter): Promise<boolean>;
}

/** Resumes a parked execution: 'gone' when its token is no longer waited on (it timed out or ended). */
export interface TaskCallbacks {
  resume(taskToken: string): Promise<'resumed' | 'gone'>;
}

const tenantsPk = (provider: string) => `WAIT#${provider}`;
const waitPk = (provider: string, tenant: string) => `WAIT#${provider}#${tenant}`;
const ttlOf = (d: Date) => Math.ceil(d.getTime() / 1000);

/**
 * Waiters as items of the tasks table: `WAIT#<provider>#<tenant>` / `<waiter key>` with taskId,
 * executionName, taskToken and ttl; the provider's waiting tenants as `WAIT#<provider>` / `<tenant>`
 * with a mark and ttl.
 */
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
        Item: { pk: waitPk(provider, w.tenant), sk: w.key, ...w, ttl: ttlOf(expiresAt) },
      }),
    );
    // after the waiter: a waker that read the list before this put finds the waiter when it looks
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: tenantsPk(provider), sk: w.tenant, mark: randomUUID(), ttl: ttlOf(expiresAt) },
      }),
    );
  }

  async tenants(provider: string): Promise<WaitingTenant[]> {
    const out: WaitingTenant[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': tenantsPk(provider) },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const i of res.Items ?? []) out.push({ tenant: String(i.sk), mark: String(i.mark) });
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async heads(provider: string, tenant: string, limit: number): Promise<Waiter[]> {
    const pages = await Promise.all(
      ['0#', '1#', '2#'].map((rank) =>
        this.doc.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :rank)',
            ExpressionAttributeValues: { ':pk': waitPk(provider, tenant), ':rank': rank },
            ConsistentRead: true,
            Limit: limit,
          }),
        ),
      ),
    );
    return pages.flatMap((res) =>
      (res.Items ?? []).map((i) => ({
        key: String(i.sk),
        taskId: String(i.taskId),
        tenant,
        executionName: String(i.executionName),
        taskToken: String(i.taskToken),
      })),
    );
  }

  async forget(provider: string, t: WaitingTenant): Promise<void> {
    await this.conditionalDelete({ pk: tenantsPk(provider), sk: t.tenant }, 'mark = :v', t.mark);
  }

  take(provider: string, w: Waiter): Promise<boolean> {
    return this.conditionalDelete(
      { pk: waitPk(provider, w.tenant), sk: w.key },
      'taskToken = :v',
      w.taskToken,
    );
  }

  private async conditionalDelete(key: Record<string, string>, condition: string, value: string) {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: key,
          ConditionExpression: condition,
          ExpressionAttributeValues: { ':v': value },
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

type Candidate = ParkedTask & { waiter: Waiter };

/**
 * The parked tasks that may take `free` slots: the most urgent waiters of the tenants whose turn
 * comes first (tenants found with no waiter left are dropped from the list on the way).
 */
async function nextParked(
  waiters: ProviderWaiters,
  provider: string,
  s: ProviderState,
  free: number,
  now: number,
): Promise<Candidate[]> {
  const listed = await waiters.tenants(provider);
  const byName = new Map(listed.map((t) => [t.tenant, t]));
  const reserved = Object.keys(liveReservations(s, now));
  const out: Candidate[] = [];
  let tenants = 0;
  for (const tenant of tenantOrder([...byName.keys()], s.fair ?? INITIAL_FAIR_SHARE_STATE)) {
    if (tenants >= free) break;
    // a tenant's woken tasks that have not come yet are still listed: read past them
    const heads = await waiters.heads(provider, tenant, free + reserved.length);
    if (heads.length === 0) {
      await waiters.forget(provider, byName.get(tenant) as WaitingTenant);
      continue;
    }
    const mine = heads.flatMap((w) => {
      const parked = parkedTaskOf(w.key, tenant);
      return parked && !reserved.includes(parked.id) ? [{ ...parked, waiter: w }] : [];
    });
    if (mine.length > 0) tenants++;
    out.push(...mine);
  }
  return out;
}

/**
 * Applies `change` to the provider's state (a slot freed, a reservation given back) and, in the same
 * conditional write, reserves its free slots for its next parked tasks in fair order (core
 * `handOffSlots`); then resumes those. A task arriving meanwhile finds the slots taken and parks,
 * so a woken task never loses its slot to it. A waiter whose execution no longer waits gives its
 * reservation back and the next one is woken. Returns how many it resumed.
 */
export async function wakeWaiters(
  deps: WakeDeps,
  provider: string,
  now: number,
  change?: (s: ProviderState) => ProviderState,
): Promise<number> {
  const limits = deps.limits(provider);
  let pending = change;
  let woken = 0;
  for (let round = 0; round < 5; round++) {
    const stored = await deps.health.getProviderState(provider);
    const current = stored ?? initialProviderState(provider, limits, now);
    const after = pending ? pending(current) : current;
    const free = freeSlots(after, now, limits);
    const parked = free > 0 ? await nextParked(deps.waiters, provider, after, free, now) : [];
    if (parked.length === 0 && !pending) break;
    const chosen = await updateProviderState(deps.health, provider, limits, now, (s) => {
      const { next, chosen } = handOffSlots(pending ? pending(s) : s, parked, now, limits);
      return { next, result: chosen };
    });
    pending = undefined;
    const gone: string[] = [];
    for (const c of chosen) {
      if ((await deps.callbacks.resume(c.waiter.taskToken)) === 'resumed') woken++;
      else gone.push(c.id);
      // after the resume: a crash in between leaves a stale waiter (resumed later as 'gone'), never a lost one
      await deps.waiters.take(provider, c.waiter);
    }
    if (gone.length === 0) break;
    await updateProviderState(deps.health, provider, limits, now, (s) => {
      const next = unreserve(s, gone, now);
      return { next, result: undefined };
    });
  }
  return woken;
}

/** Hands the free slots of every provider to its parked tasks (the reaper's pass). */
export async function wakeAllProviders(deps: WakeDeps, now: number): Promise<number> {
  let woken = 0;
  for (const state of await deps.health.listProviderStates())
    woken += await wakeWaiters(deps, state.provider, now);
  return woken;
}
