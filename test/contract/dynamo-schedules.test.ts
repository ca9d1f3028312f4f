import { randomBytes } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoScheduleStore } from '../../lib/aws/dynamo-schedules.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { makeTask } from '../support/tasks.js';
import { makeSchedule, scheduleStoreContract } from './schedule-store.contract.js';

let ddb: DynamoDbLocal;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
}, 60_000);

afterAll(async () => {
  await ddb?.stop();
});

async function freshTable(): Promise<string> {
  const tableName = `schedules-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  return tableName;
}

scheduleStoreContract(
  'DynamoDB',
  async () => new DynamoScheduleStore({ client: ddb.client, tableName: await freshTable() }),
);

describe('DynamoScheduleStore beyond the port', () => {
  it('shares the task table without showing up among tasks', async () => {
    // Arrange
    const tableName = await freshTable();
    const schedules = new DynamoScheduleStore({ client: ddb.client, tableName });
    const tasks = new DynamoTaskStore({ client: ddb.client, tableName });
    const task = makeTask();
    await tasks.create(task);
    await schedules.create(makeSchedule());
    // Act
    const listed = await tasks.list('acme', { limit: 10 });
    const counts = await tasks.countByStatus();
    // Assert
    expect(listed.items.map((t) => t.id)).toEqual([task.id]);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
  });
});
