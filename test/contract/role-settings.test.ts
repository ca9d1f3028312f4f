import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from '@jest/globals';
import { DynamoRoleSettings } from '../../lib/aws/dynamo-role-settings.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { SqliteRoleSettings } from '../../lib/local/sqlite-role-settings.js';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { tempDir } from '../support/local-platform.js';
import { roleSettingsContract } from './role-settings.contract.js';

let ddb: DynamoDbLocal;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);

afterAll(async () => {
  await ddb?.stop();
});

// the local platform: a table of the task store's SQLite file
roleSettingsContract('SQLite', async () => {
  const store = new SqliteTaskStore(join(tempDir('autodev-role-settings-'), 'autodev.db'));
  return new SqliteRoleSettings(store.connection);
});

// the AWS shape: items of the tasks table (the table the stack builds)
roleSettingsContract('DynamoDB', async () => {
  const tableName = `roles-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  return new DynamoRoleSettings(ddb.client, tableName);
});
