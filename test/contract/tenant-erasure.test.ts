import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from '@jest/globals';
import { DynamoAuditLog } from '../../lib/aws/dynamo-audit.js';
import { DynamoScheduleStore } from '../../lib/aws/dynamo-schedules.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { SqliteAuditLog } from '../../lib/local/sqlite-audit.js';
import { SqliteScheduleStore } from '../../lib/local/sqlite-schedules.js';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { tempDir } from '../support/local-platform.js';
import { tenantErasureContract } from './tenant-erasure.contract.js';

let ddb: DynamoDbLocal;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);

afterAll(async () => {
  await ddb?.stop();
});

// the local platform's adapters on one SQLite file, the audit log on the store's connection
tenantErasureContract('SQLite', async () => {
  const file = join(tempDir('autodev-erase-'), 'autodev.db');
  const tasks = new SqliteTaskStore(file);
  return {
    tasks,
    spend: tasks,
    schedules: new SqliteScheduleStore(file),
    audit: new SqliteAuditLog(tasks.connection),
  };
});

// the AWS shape's adapters on one table
tenantErasureContract('DynamoDB', async () => {
  const tableName = `erase-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  const tasks = new DynamoTaskStore({ client: ddb.client, tableName });
  return {
    tasks,
    spend: tasks,
    schedules: new DynamoScheduleStore({ client: ddb.client, tableName }),
    audit: new DynamoAuditLog(ddb.client, tableName),
  };
});
