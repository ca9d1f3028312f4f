import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, VersionConflictError } from '../core/errors.js';
import {
  type ErasableTaskStore,
  type IdempotencyClaim,
  type ListQuery,
  type LogLine,
  matchesListFilters,
  type TaskErasure,
} from '../core/ports.js';
import type { ProviderState, ProviderStateStore } from '../core/provider-health.js';
import { expiresAt } from '../core/retention.js';
import { isTerminal, TASK_STATUSES, type Task, type TaskStatus, TERMINAL_STATUSES } from '../core/schemas.js';
import type { ErasableTenantSpendStore } from '../core/tenant-spend.js';
import { batchDelete, batchWrite } from './batch-delete.js';
import { DynamoSlotStates, PROVIDERS_PK } from './dynamo-slot-states.js';
import { LEASE_SHARDS, leaseShard, TASK_TABLE } from './task-table.js';

const TASK_SK = 'TASK';
/** The item beside a task that names its idempotency key, so that erasing the task finds the key. */
const TASK_IDEM_SK = 'IDEM';
const taskPk = (id: string) => `TASK#${id}`;
const logPk = (id: string) => `LOG#${id}`;
const logSk = (seq: number) => `L#${String(seq).padStart(10, '0')}`;
const spendPk = (tenant: string) => `SPEND#${tenant}`;
/** Spend counters outlive their day by this long (for reports), then expire. */
const SPEND_TTL_SECONDS = 35 * 86_400;
const reportSk = (attempt: number) => `REPORT#${String(attempt).padStart(4, '0')}`;

type Item = Record<string, unknown>;

/** DynamoDB's limit of items in one TransactWriteItems. */
export const MAX_TRANSACTION_ITEMS = 100;
/** A batch's idempotency claim whose tasks have not come after this long: its writer stopped. */
export const BATCH_CLAIM_STALE_MS = 60_000;

export interface DynamoTaskStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** How long attempt reports are kept (they are read once, right after the attempt). */
  reportTtlSeconds?: number;
  /** Items per page of the byLease query. @default DynamoDB's own 1 MB pages */
  leasePageSize?: number;
  /**
   * How long a finished task and its log lines are kept, in seconds: finished task items carry a
   * TTL of their end plus this, log lines of their writing plus this. @default kept forever
   */
  retentionSeconds?: number;
}

function isTransactionCancelled(err: unknown): err is Error & {
  CancellationReasons?: { Code?: string; Item?: Record<string, { S?: string; N?: string }> }[];
} {
  return err instanceof Error && err.name === 'TransactionCanceledException';
}

/**
 * The TaskStore on one DynamoDB table (see task-table.ts). Every task change is a conditional write
 * on `version`; idempotency records are written in the same transaction as the task they name.
 */
export class DynamoTaskStore implements ErasableTaskStore, ProviderStateStore, ErasableTenantSpendStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly reportTtlSeconds: number;
  private readonly leasePageSize: number | undefined;
  private readonly retentionSeconds: number | undefined;
  private readonly providerStates: DynamoSlotStates;

  constructor(opts: DynamoTaskStoreOptions) {
    this.doc = DynamoDBDocumentClient.from(opts.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.table = opts.tableName;
    this.reportTtlSeconds = opts.reportTtlSeconds ?? 7 * 86_400;
    this.leasePageSize = opts.leasePageSize;
    this.retentionSeconds = opts.retentionSeconds || undefined;
    this.providerStates = new DynamoSlotStates(this.doc, this.table, PROVIDERS_PK);
  }

  private item(task: Task): Item {
    const expires = expiresAt(task, this.retentionSeconds && this.retentionSeconds * 1000);
    return {
      [TASK_TABLE.partitionKey]: taskPk(task.id),
      [TASK_TABLE.sortKey]: TASK_SK,
      tenant: task.tenant,
      taskId: task.id,
      taskStatus: task.status,
      taskRole: task.role,
      version: task.version,
      data: JSON.stringify(task),
      // retention: DynamoDB deletes a finished task this long after it ended (never one not finished)
      ...(expires === undefined ? {} : { [TASK_TABLE.ttlAttribute]: Math.ceil(expires / 1000) }),
      // byLease: only tasks a lease can expire on (the reaper's query)
      ...(task.lease && (task.status === 'running' || task.status === 'retrying')
        ? {
            [TASK_TABLE.byLease.partitionKey]: leaseShard(task.id),
            [TASK_TABLE.byLease.sortKey]: task.lease.expiresAt,
          }
        : {}),
    };
  }

  private static parse(item: Item | undefined): Task | undefined {
    return item && typeof item.data === 'string' ? (JSON.parse(item.data) as Task) : undefined;
  }

  async create(task: Task, idem?: IdempotencyClaim): Promise<{ task: Task; created: boolean }> {
    const taskPut = {
      TableName: this.table,
      Item: this.item(task),
      ConditionExpression: 'attribute_not_exists(pk)',
    };
    if (!idem) {
      await this.doc.send(new PutCommand(taskPut));
      return { task, created: true };
    }
    const now = Date.now();
    const expiresAtMs = now + idem.ttlSeconds * 1000;
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: {
                  pk: `IDEM#${idem.key}`,
                  sk: 'IDEM',
                  bodyHash: idem.bodyHash,
                  claimedTaskId: task.id,
                  expiresAtMs,
                  [TASK_TABLE.ttlAttribute]: Math.ceil(expiresAtMs / 1000),
                },
                ConditionExpression: 'attribute_not_exists(pk) OR expiresAtMs < :now',
                ExpressionAttributeValues: { ':now': now },
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
            { Put: taskPut },
            {
              Put: {
                TableName: this.table,
                Item: {
                  pk: taskPk(task.id),
                  sk: TASK_IDEM_SK,
                  idemPk: `IDEM#${idem.key}`,
                  [TASK_TABLE.ttlAttribute]: Math.ceil(expiresAtMs / 1000),
                },
              },
            },
          ],
        }),
      );
      return { task, created: true };
    } catch (err) {
      const earlier = isTransactionCancelled(err) ? err.CancellationReasons?.[0] : undefined;
      if (earlier?.Code !== 'ConditionalCheckFailed') throw err;
      if (earlier.Item?.bodyHash?.S !== idem.bodyHash) {
        throw new ConflictError('This Idempotency-Key was used with a different request body.');
      }
      const found = await this.getById(earlier.Item?.claimedTaskId?.S ?? '');
      if (!found) throw new ConflictError('This Idempotency-Key names a task that no longer exists.');
      return { task: found, created: false };
    }
  }

  /**
   * A batch in one TransactWriteItems (at most MAX_TRANSACTION_ITEMS tasks). With an idempotency
   * key, which would take the transaction past DynamoDB's 100 items, the key is claimed first
   * (naming the batch's task ids; "in progress" until the tasks exist), then the tasks are written;
   * a write that fails gives the key back. A repeat of the key finds the tasks, or, while they do
   * not exist yet, a conflict; a claim whose tasks never came is taken over after
   * BATCH_CLAIM_STALE_MS (its writer stopped between the two writes).
   */
  async createBatch(tasks: Task[], idem?: IdempotencyClaim): Promise<{ tasks: Task[]; created: boolean }> {
    if (tasks.length === 0 || tasks.length > MAX_TRANSACTION_ITEMS) {
      throw new Error(`A batch holds 1 to ${MAX_TRANSACTION_ITEMS} tasks; it has ${tasks.length}.`);
    }
    if (idem) {
      const earlier = await this.claimBatchKey(tasks, idem);
      if (earlier) return { tasks: earlier, created: false };
    }
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: tasks.map((task) => ({
            Put: {
              TableName: this.table,
              Item: this.item(task),
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          })),
        }),
      );
    } catch (err) {
      if (idem) await this.releaseBatchKey(idem, tasks[0]?.id ?? '').catch(() => undefined);
      throw err;
    }
    return { tasks, created: true };
  }

  /** Claims `idem` for the batch; the earlier batch's tasks when the key was claimed with this body. */
  private async claimBatchKey(tasks: Task[], idem: IdempotencyClaim): Promise<Task[] | undefined> {
    const first = tasks[0]?.id ?? '';
    const ids = tasks.map((t) => t.id);
    for (let round = 0; round < 3; round++) {
      const now = Date.now();
      const expiresAtMs = now + idem.ttlSeconds * 1000;
      const existing = await this.doc.send(
        new GetCommand({
          TableName: this.table,
          Key: { pk: `IDEM#${idem.key}`, sk: 'IDEM' },
          ConsistentRead: true,
        }),
      );
      const old = existing.Item as
        | {
            bodyHash?: string;
            claimedTaskId?: string;
            claimedTaskIds?: string[];
            claimedAtMs?: number;
            expiresAtMs?: number;
          }
        | undefined;
      const live = old && (old.expiresAtMs ?? 0) >= now;
      if (old && live) {
        if (old.bodyHash !== idem.bodyHash) {
          throw new ConflictError('This Idempotency-Key was used with a different request body.');
        }
        const earlierIds = old.claimedTaskIds ?? (old.claimedTaskId ? [old.claimedTaskId] : []);
        const found = await Promise.all(earlierIds.map((id) => this.getById(id)));
        if (found.every((t) => t !== undefined) && found.length > 0) return found as Task[];
        if (now - (old.claimedAtMs ?? 0) < BATCH_CLAIM_STALE_MS) {
          throw new ConflictError('A request with this Idempotency-Key is still being processed; try again.');
        }
      }
      try {
        await this.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.table,
                  Item: {
                    pk: `IDEM#${idem.key}`,
                    sk: 'IDEM',
                    bodyHash: idem.bodyHash,
                    claimedTaskId: first,
                    claimedTaskIds: ids,
                    claimedAtMs: now,
                    expiresAtMs,
                    [TASK_TABLE.ttlAttribute]: Math.ceil(expiresAtMs / 1000),
                  },
                  // nobody claimed it since we looked
                  ...(old
                    ? {
                        ConditionExpression:
                          'claimedAtMs = :seen OR (attribute_not_exists(claimedAtMs) AND expiresAtMs = :exp)',
                        ExpressionAttributeValues: {
                          ':seen': old.claimedAtMs ?? -1,
                          ':exp': old.expiresAtMs ?? -1,
                        },
                      }
                    : { ConditionExpression: 'attribute_not_exists(pk)' }),
                },
              },
              {
                // erasing the first task finds the key through this item (as for a single task)
                Put: {
                  TableName: this.table,
                  Item: {
                    pk: taskPk(first),
                    sk: TASK_IDEM_SK,
                    idemPk: `IDEM#${idem.key}`,
                    [TASK_TABLE.ttlAttribute]: Math.ceil(expiresAtMs / 1000),
                  },
                },
              },
            ],
          }),
        );
        return undefined;
      } catch (err) {
        if (!isTransactionCancelled(err)) throw err;
        // another request claimed it meanwhile: look again
      }
    }
    throw new ConflictError('A request with this Idempotency-Key is still being processed; try again.');
  }

  /** Gives back a key claimed for a batch that could not be written. */
  private async releaseBatchKey(idem: IdempotencyClaim, first: string): Promise<void> {
    await this.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: this.table,
              Key: { pk: `IDEM#${idem.key}`, sk: 'IDEM' },
              ConditionExpression: 'claimedTaskId = :id',
              ExpressionAttributeValues: { ':id': first },
            },
          },
          { Delete: { TableName: this.table, Key: { pk: taskPk(first), sk: TASK_IDEM_SK } } },
        ],
      }),
    );
  }

  /** A task by id whatever its tenant: for the workflow and the worker, never for API callers. */
  async getById(id: string): Promise<Task | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: taskPk(id), sk: TASK_SK }, ConsistentRead: true }),
    );
    return DynamoTaskStore.parse(res.Item);
  }

  async get(tenant: string, id: string): Promise<Task | undefined> {
    const task = await this.getById(id);
    return task?.tenant === tenant ? task : undefined;
  }

  async list(tenant: string, q: ListQuery): Promise<{ items: Task[]; nextCursor?: string }> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':tenant': tenant };
    const filters: string[] = [];
    if (q.status) {
      names['#status'] = 'taskStatus';
      values[':status'] = q.status;
      filters.push('#status = :status');
    }
    if (q.role) {
      names['#role'] = 'taskRole';
      values[':role'] = q.role;
      filters.push('#role = :role');
    }
    if (q.cursor) values[':cursor'] = q.cursor;
    const input: QueryCommandInput = {
      TableName: this.table,
      IndexName: TASK_TABLE.byTenant.indexName,
      KeyConditionExpression: q.cursor ? 'tenant = :tenant AND taskId < :cursor' : 'tenant = :tenant',
      ExpressionAttributeValues: values,
      ScanIndexForward: false,
      Limit: Math.min(1000, q.limit + 1),
    };
    if (filters.length) {
      input.FilterExpression = filters.join(' AND ');
      input.ExpressionAttributeNames = names;
    }
    const found: Task[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
      for (const item of res.Items ?? []) {
        const task = DynamoTaskStore.parse(item);
        // provider and labels live in the task's JSON: filtered here, after reading
        if (task && matchesListFilters(task, q)) found.push(task);
      }
      start = res.LastEvaluatedKey;
    } while (start && found.length <= q.limit);
    const items = found.slice(0, q.limit);
    return found.length > q.limit ? { items, nextCursor: items[items.length - 1]?.id } : { items };
  }

  async put(task: Task, expectedVersion: number): Promise<void> {
    if (task.version !== expectedVersion + 1) {
      throw new Error(`put: version must be ${expectedVersion + 1}, got ${task.version}`);
    }
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: this.item(task),
          ConditionExpression: 'version = :expected',
          ExpressionAttributeValues: { ':expected': expectedVersion },
        }),
      );
    } catch (err) {
      if (
        err instanceof ConditionalCheckFailedException ||
        (err as Error).name === 'ConditionalCheckFailedException'
      ) {
        throw new VersionConflictError(
          `Task ${task.id} changed meanwhile (expected version ${expectedVersion}).`,
        );
      }
      throw err;
    }
  }

  /** Tasks in one status across tenants, oldest first (for the reaper and dependency release). */
  async listByStatus(status: TaskStatus, limit = 500): Promise<Task[]> {
    const out: Task[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: TASK_TABLE.byStatus.indexName,
          KeyConditionExpression: 'taskStatus = :s',
          ExpressionAttributeValues: { ':s': status },
          Limit: Math.min(limit - out.length, 500),
          ExclusiveStartKey: start,
        }),
      );
      for (const item of res.Items ?? []) {
        const task = DynamoTaskStore.parse(item);
        if (task) out.push(task);
      }
      start = res.LastEvaluatedKey;
    } while (start && out.length < limit);
    return out;
  }

  /**
   * Tasks whose lease expired before `now` (running or retrying), across every byLease shard and
   * every page: the reaper finds all of them whatever the table's size.
   */
  async listExpiredLeases(now: Date): Promise<Task[]> {
    const ids: string[] = [];
    for (const shard of LEASE_SHARDS) {
      let start: Record<string, unknown> | undefined;
      do {
        const res = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: TASK_TABLE.byLease.indexName,
            KeyConditionExpression: '#shard = :shard AND #expires < :now',
            ExpressionAttributeNames: {
              '#shard': TASK_TABLE.byLease.partitionKey,
              '#expires': TASK_TABLE.byLease.sortKey,
            },
            ExpressionAttributeValues: { ':shard': shard, ':now': now.getTime() },
            ExclusiveStartKey: start,
            Limit: this.leasePageSize,
          }),
        );
        for (const item of res.Items ?? []) ids.push(String(item.pk).slice('TASK#'.length));
        start = res.LastEvaluatedKey;
      } while (start);
    }
    const tasks = await Promise.all(ids.map((id) => this.getById(id)));
    return tasks.filter((t): t is Task => t !== undefined);
  }

  async countByStatus(): Promise<Record<TaskStatus, number>> {
    const out = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    await Promise.all(
      TASK_STATUSES.map(async (status) => {
        let start: Record<string, unknown> | undefined;
        do {
          const res = await this.doc.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: TASK_TABLE.byStatus.indexName,
              KeyConditionExpression: 'taskStatus = :s',
              ExpressionAttributeValues: { ':s': status },
              Select: 'COUNT',
              ExclusiveStartKey: start,
            }),
          );
          out[status] += res.Count ?? 0;
          start = res.LastEvaluatedKey;
        } while (start);
      }),
    );
    return out;
  }

  async appendLogs(taskId: string, lines: string[], now: Date): Promise<void> {
    if (lines.length === 0) return;
    const ttl =
      this.retentionSeconds === undefined
        ? undefined
        : Math.ceil(now.getTime() / 1000) + this.retentionSeconds;
    const res = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: logPk(taskId), sk: 'SEQ' },
        UpdateExpression: ttl === undefined ? 'ADD #last :n' : 'ADD #last :n SET #ttl = :ttl',
        ExpressionAttributeNames: {
          '#last': 'last',
          ...(ttl === undefined ? {} : { '#ttl': TASK_TABLE.ttlAttribute }),
        },
        ExpressionAttributeValues: { ':n': lines.length, ...(ttl === undefined ? {} : { ':ttl': ttl }) },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const last = Number(res.Attributes?.last ?? lines.length);
    const first = last - lines.length + 1;
    const at = now.toISOString();
    const puts = lines.map((text, i) => ({
      PutRequest: {
        Item: {
          pk: logPk(taskId),
          sk: logSk(first + i),
          seq: first + i,
          at,
          text,
          ...(ttl === undefined ? {} : { [TASK_TABLE.ttlAttribute]: ttl }),
        },
      },
    }));
    await batchWrite(this.doc, this.table, puts, `log lines for task ${taskId}`);
  }

  /** Every item of one partition (keys and the attributes erasure needs), across pages. */
  private async partition(pk: string): Promise<Item[]> {
    const out: Item[] = [];
    let start: Item | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ProjectionExpression: 'pk, sk, idemPk',
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      out.push(...(res.Items ?? []));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /**
   * Deletes the tenant's finished tasks (found through byTenant) with their attempt reports, log
   * lines and idempotency keys. Each task item goes on the condition that it is still finished: a
   * task retried meanwhile is kept, with everything of it.
   */
  async eraseTenant(tenant: string): Promise<TaskErasure> {
    const finished: Task[] = [];
    let start: Item | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: TASK_TABLE.byTenant.indexName,
          KeyConditionExpression: 'tenant = :tenant',
          ExpressionAttributeValues: { ':tenant': tenant },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of res.Items ?? []) {
        const task = DynamoTaskStore.parse(item);
        if (task && task.tenant === tenant && isTerminal(task.status)) finished.push(task);
      }
      start = res.LastEvaluatedKey;
    } while (start);
    const out: TaskErasure = { tasks: 0, logLines: 0, idempotencyKeys: 0, branches: 0 };
    const queue = [...finished];
    const worker = async () => {
      for (let task = queue.shift(); task; task = queue.shift()) await this.eraseTask(task, out);
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
    return out;
  }

  private async eraseTask(task: Task, out: TaskErasure): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: taskPk(task.id), sk: TASK_SK },
          ConditionExpression: 'taskStatus IN (:s0, :s1, :s2)',
          ExpressionAttributeValues: Object.fromEntries(TERMINAL_STATUSES.map((s, i) => [`:s${i}`, s])),
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return; // moved on, or gone
      throw err;
    }
    out.tasks++;
    if (task.branch || task.commit || task.pullRequest) out.branches++;
    const rest = (await this.partition(taskPk(task.id))).filter((i) => i.sk !== TASK_SK);
    const logItems = await this.partition(logPk(task.id));
    await batchDelete(
      this.doc,
      this.table,
      [...rest, ...logItems].map((i) => ({ pk: i.pk, sk: i.sk })),
      `the items of task ${task.id}`,
    );
    out.logLines += logItems.filter((i) => String(i.sk).startsWith('L#')).length;
    // the key itself, unless it expired and names another task by now
    for (const link of rest.filter((i) => i.sk === TASK_IDEM_SK && typeof i.idemPk === 'string')) {
      try {
        await this.doc.send(
          new DeleteCommand({
            TableName: this.table,
            Key: { pk: link.idemPk, sk: 'IDEM' },
            ConditionExpression: 'claimedTaskId = :id',
            ExpressionAttributeValues: { ':id': task.id },
          }),
        );
        out.idempotencyKeys++;
      } catch (err) {
        if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
      }
    }
  }

  async readLogs(
    taskId: string,
    afterSeq: number,
    limit: number,
  ): Promise<{ lines: LogLine[]; lastSeq: number }> {
    const res = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': logPk(taskId),
          ':from': logSk(afterSeq + 1),
          ':to': logSk(9_999_999_999),
        },
        Limit: limit,
        ConsistentRead: true,
      }),
    );
    const lines = (res.Items ?? []).map((i) => ({
      seq: Number(i.seq),
      at: String(i.at),
      text: String(i.text),
    }));
    return { lines, lastSeq: lines.length ? (lines[lines.length - 1] as LogLine).seq : afterSeq };
  }

  /** Stores the worker's report of one attempt; writing it twice keeps the first. */
  async putAttemptReport(taskId: string, attempt: number, report: unknown): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk: taskPk(taskId),
            sk: reportSk(attempt),
            data: JSON.stringify(report),
            [TASK_TABLE.ttlAttribute]: Math.ceil(Date.now() / 1000) + this.reportTtlSeconds,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  }

  async getAttemptReport(taskId: string, attempt: number): Promise<unknown> {
    const res = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: taskPk(taskId), sk: reportSk(attempt) },
        ConsistentRead: true,
      }),
    );
    return typeof res.Item?.data === 'string' ? JSON.parse(res.Item.data) : undefined;
  }

  /** The tenant's model spend per UTC day: one item per tenant and day, added to atomically per model call. */
  async addTenantSpend(tenant: string, day: string, usd: number): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: spendPk(tenant), sk: day },
        UpdateExpression: 'ADD usd :usd SET #ttl = if_not_exists(#ttl, :ttl)',
        ExpressionAttributeNames: { '#ttl': TASK_TABLE.ttlAttribute },
        ExpressionAttributeValues: {
          ':usd': usd,
          ':ttl': Math.ceil(Date.parse(`${day}T00:00:00Z`) / 1000) + SPEND_TTL_SECONDS,
        },
      }),
    );
  }

  async tenantSpend(tenant: string, day: string): Promise<number> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: spendPk(tenant), sk: day }, ConsistentRead: true }),
    );
    return typeof res.Item?.usd === 'number' ? res.Item.usd : 0;
  }

  /** Erasure: every day's counter of the tenant (its `SPEND#<tenant>` partition). */
  async eraseTenantSpend(tenant: string): Promise<number> {
    const items = await this.partition(spendPk(tenant));
    await batchDelete(
      this.doc,
      this.table,
      items.map((i) => ({ pk: i.pk, sk: i.sk })),
      `the spend counters of tenant ${tenant}`,
    );
    return items.length;
  }

  /** Provider health (circuit breaker, token bucket) shared by every workflow, one item per provider. */
  getProviderState(provider: string): Promise<ProviderState | undefined> {
    return this.providerStates.getProviderState(provider);
  }

  putProviderState(state: ProviderState, expectedVersion: number): Promise<void> {
    return this.providerStates.putProviderState(state, expectedVersion);
  }

  listProviderStates(): Promise<ProviderState[]> {
    return this.providerStates.listProviderStates();
  }
}
