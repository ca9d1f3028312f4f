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
 *
 * Sparse indexes (only task items carry their keys):
 * - `byTenant` (tenant, taskId): a tenant's tasks newest first (task ids sort by creation time).
 * - `byStatus` (taskStatus, taskId): counts per status, and running/blocked tasks for the reaper.
 */
export const TASK_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'ttl',
  byTenant: { indexName: 'byTenant', partitionKey: 'tenant', sortKey: 'taskId' },
  byStatus: { indexName: 'byStatus', partitionKey: 'taskStatus', sortKey: 'taskId' },
} as const;

/** CreateTable input for the same table (used by tests against DynamoDB Local). */
export function createTaskTableInput(tableName: string): CreateTableCommandInput {
  const t = TASK_TABLE;
  const gsi = (i: { indexName: string; partitionKey: string; sortKey: string }) => ({
    IndexName: i.indexName,
    KeySchema: [
      { AttributeName: i.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: i.sortKey, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [t.partitionKey, t.sortKey, 'tenant', 'taskId', 'taskStatus'].map((name) => ({
      AttributeName: name,
      AttributeType: 'S',
    })),
    KeySchema: [
      { AttributeName: t.partitionKey, KeyType: 'HASH' },
      { AttributeName: t.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [gsi(t.byTenant), gsi(t.byStatus)],
  };
}
