import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The one DynamoDB table behind the AWS TaskStore. The CDK construct and the tests both build the
 * table from this description, so they cannot drift apart.
 *
 * Items (pk / sk):
 * - task:          `TASK#<id>` / `TASK`          + tenant, taskId, taskStatus, taskRole, version, data (JSON)
 * - idempotency:   `IDEM#<tenant>#<key>` / `IDEM` + bodyHash, taskId, expiresAtMs, ttl
 * - log counter:   `LOG#<id>` / `SEQ`            + last
 * - log line:      `LOG#<id>` / `L#<seq, 10 digits>` + at, text
 * - attempt report: `TASK#<id>` / `REPORT#<attempt, 4 digits>` + data (JSON), ttl
 * - provider health: `PROVIDERS` / `<provider>` + version, data (JSON)
 * - audit entry:   `AUDIT#<tenant>` / `E#<ISO time>#<random>` + auditAction, auditSubject, auditStatus, data
 * - tenant spend:  `SPEND#<tenant>` / `<YYYY-MM-DD>` + usd, ttl (the usdPerDay quota's daily counter)
 * - role setting:  `ROLESET#<tenant>` / `<agent role>` + fullAccess, updatedBy, updatedAt (full-access mode)
 * - schedule, webhook delivery: see dynamo-schedules.ts, dynamo-deliveries.ts
 *
 * Sparse indexes (only task items carry their keys):
 * - `byTenant` (tenant, taskId): a tenant's tasks newest first (task ids sort by creation time).
 * - `byStatus` (taskStatus, taskId): counts per status, and queued/blocked tasks for the reaper.
 * - `byLease` (leaseShard, leaseExpiresAt, keys only): running and retrying tasks by when their
 *   lease expires, so the reaper queries the expired ones at any table size. Only tasks that hold a
 *   lease carry the keys; the shard (`L0`…`L7`, from the task id) spreads heartbeat writes.
 */
export const TASK_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'ttl',
  byTenant: { indexName: 'byTenant', partitionKey: 'tenant', sortKey: 'taskId' },
  byStatus: { indexName: 'byStatus', partitionKey: 'taskStatus', sortKey: 'taskId' },
  byLease: { indexName: 'byLease', partitionKey: 'leaseShard', sortKey: 'leaseExpiresAt', shards: 8 },
} as const;

/** The byLease shard of a task: a stable hash of its id. */
export function leaseShard(taskId: string): string {
  let h = 0;
  for (let i = 0; i < taskId.length; i++) h = (h * 31 + taskId.charCodeAt(i)) >>> 0;
  return `L${h % TASK_TABLE.byLease.shards}`;
}

/** Every byLease shard, for a query across all of them. */
export const LEASE_SHARDS: readonly string[] = Array.from(
  { length: TASK_TABLE.byLease.shards },
  (_, i) => `L${i}`,
);

/** CreateTable input for the same table (used by tests against DynamoDB Local). */
export function createTaskTableInput(tableName: string): CreateTableCommandInput {
  const t = TASK_TABLE;
  const gsi = (
    i: { indexName: string; partitionKey: string; sortKey: string },
    projection: 'ALL' | 'KEYS_ONLY' = 'ALL',
  ) => ({
    IndexName: i.indexName,
    KeySchema: [
      { AttributeName: i.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: i.sortKey, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: projection },
  });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      ...[t.partitionKey, t.sortKey, 'tenant', 'taskId', 'taskStatus', t.byLease.partitionKey].map(
        (name) => ({
          AttributeName: name,
          AttributeType: 'S' as const,
        }),
      ),
      { AttributeName: t.byLease.sortKey, AttributeType: 'N' as const },
    ],
    KeySchema: [
      { AttributeName: t.partitionKey, KeyType: 'HASH' },
      { AttributeName: t.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [gsi(t.byTenant), gsi(t.byStatus), gsi(t.byLease, 'KEYS_ONLY')],
  };
}
