import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { parseRecurringTasks } from '../../../lib/aws/recurring.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { lambdaEnvironment } from './environment.js';
import { lambdaContext } from './events.js';

const sqs = mockClient(SQSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let handler: (
  event: unknown,
  context: Context,
) => Promise<{ taskId?: string; created?: boolean; skipped?: boolean }>;

beforeAll(async () => {
  ({ ddb, store } = await lambdaEnvironment());
  ({ handler } = await import('../../../lambdas/schedules.js'));
}, 60_000);
afterAll(async () => {
  sqs.reset();
  await ddb?.stop();
});

const nightly = {
  name: 'nightly-deps',
  schedule: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Berlin',
  tenant: 'acme',
  task: { repo: 'https://github.com/acme/app.git', prompt: 'Update dependencies', role: 'devops' },
};

/** The input EventBridge Scheduler sends, with <aws.scheduler.scheduled-time> filled in. */
const firing = (scheduledTime: string) => ({
  name: nightly.name,
  tenant: nightly.tenant,
  task: nightly.task,
  scheduledTime,
});

describe('schedules Lambda (recurring tasks)', () => {
  it('submits one task per firing, once even when the scheduler retries the invocation', async () => {
    // Arrange
    sqs.on(SendMessageCommand).resolves({});
    // Act
    const first = await handler(firing('2026-11-25T02:00:00Z'), lambdaContext('schedules'));
    const retried = await handler(firing('2026-11-25T02:00:00Z'), lambdaContext('schedules'));
    const nextNight = await handler(firing('2026-11-26T02:00:00Z'), lambdaContext('schedules'));
    // Assert
    expect(first.created).toBe(true);
    expect(retried).toEqual({ taskId: first.taskId, created: false });
    expect(nextNight.created).toBe(true);
    expect(await store.get('acme', first.taskId as string)).toMatchObject({
      status: 'queued',
      role: 'devops',
      createdBy: 'schedule:nightly-deps',
    });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(2);
  });

  it('submits a firing of an API-made schedule as a submitter while it exists, and skips it once deleted', async () => {
    // Arrange
    sqs.on(SendMessageCommand).resolves({});
    const { DynamoScheduleStore } = await import('../../../lib/aws/dynamo-schedules.js');
    const schedules = new DynamoScheduleStore({
      client: ddb.client,
      tableName: process.env.TASKS_TABLE_NAME as string,
    });
    const schedule = {
      id: 's00000000000000000001',
      tenant: 'acme',
      name: 'api-made',
      schedule: 'rate(1 day)',
      timezone: 'UTC',
      task: nightly.task,
      createdAt: '2026-11-25T00:00:00.000Z',
      enabled: true,
    };
    await schedules.create(schedule);
    const apiFiring = { scheduleId: schedule.id, ...firing('2026-11-25T05:00:00Z'), name: schedule.name };
    // Act
    const first = await handler(apiFiring, lambdaContext('schedules'));
    const retried = await handler(apiFiring, lambdaContext('schedules'));
    await schedules.delete('acme', schedule.id);
    const afterDelete = await handler(
      { ...apiFiring, scheduledTime: '2026-11-26T05:00:00Z' },
      lambdaContext('schedules'),
    );
    // Assert
    expect(first.created).toBe(true);
    expect(retried).toEqual({ taskId: first.taskId, created: false });
    expect(afterDelete).toEqual({ skipped: true });
    expect(await store.get('acme', first.taskId as string)).toMatchObject({ createdBy: 'schedule:api-made' });
  });

  it('refuses a firing without its scheduled time', async () => {
    await expect(
      handler({ ...firing('x'), scheduledTime: undefined }, lambdaContext('schedules')),
    ).rejects.toThrow();
  });
});

describe('recurring task definitions (-c recurring=<file>)', () => {
  it('accepts valid definitions', () => {
    expect(parseRecurringTasks([nightly])).toEqual([nightly]);
  });

  it.each([
    [
      'a local repository',
      [{ ...nightly, task: { ...nightly.task, repo: '/srv/app' } }],
      /not accepted for this tenant/,
    ],
    ['an invalid task body', [{ ...nightly, task: { repo: nightly.task.repo } }], /prompt/],
    ['a malformed schedule', [{ ...nightly, schedule: '0 3 * * *' }], /schedule/],
    ['a name used twice', [nightly, nightly], /used twice/],
  ])('refuses %s at synth time', (_what, input, message) => {
    expect(() => parseRecurringTasks(input, 'recurring.json')).toThrow(message);
  });
});
