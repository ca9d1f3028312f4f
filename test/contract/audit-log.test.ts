import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoAuditLog } from '../../lib/aws/dynamo-audit.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { SqliteAuditLog } from '../../lib/local/sqlite-audit.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { tempDir } from '../support/local-platform.js';
import { makeTask } from '../support/tasks.js';
import { auditLogContract, makeEntry } from './audit-log.contract.js';

let ddb: DynamoDbLocal;
const opened: SqliteAuditLog[] = [];

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);

afterAll(async () => {
  for (const log of opened) log.close();
  await ddb?.stop();
});

async function freshTable(): Promise<string> {
  const tableName = `audit-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  return tableName;
}

auditLogContract('SQLite', async () => {
  const log = new SqliteAuditLog(join(tempDir('autodev-audit-'), 'audit.db'));
  opened.push(log);
  return log;
});

auditLogContract('DynamoDB', async () => new DynamoAuditLog(ddb.client, await freshTable()));

describe('DynamoAuditLog beyond the port', () => {
  it('shares the task table without showing up among tasks', async () => {
    const tableName = await freshTable();
    const tasks = new DynamoTaskStore({ client: ddb.client, tableName });
    const task = makeTask();
    await tasks.create(task);
    await new DynamoAuditLog(ddb.client, tableName).append(makeEntry({ target: task.id }));
    expect((await tasks.list('acme', { limit: 10 })).items.map((t) => t.id)).toEqual([task.id]);
    const counts = await tasks.countByStatus();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
  });
});
