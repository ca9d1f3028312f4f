import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import type { PrepareOutput, RecordOutput } from '../../../lib/aws/workflow-steps.js';
import { transition } from '../../../lib/core/lifecycle.js';
import type { Task } from '../../../lib/core/schemas.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { lambdaEnvironment } from './environment.js';
import { lambdaContext } from './events.js';

const sqs = mockClient(SQSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let prepare: (event: unknown, context: Context) => Promise<PrepareOutput>;
let record: (event: unknown, context: Context) => Promise<RecordOutput>;
const usage = { inputTokens: 10, outputTokens: 5, costUsd: 0.01 };

beforeAll(async () => {
  sqs.on(SendMessageCommand).resolves({});
  ({ ddb, store } = await lambdaEnvironment());
  prepare = (await import('../../../lambdas/workflow-prepare.js')).handler as unknown as typeof prepare;
  ({ handler: record } = await import('../../../lambdas/workflow-record.js'));
}, 60_000);
afterAll(async () => {
  sqs.reset();
  await ddb?.stop();
});

/** What the workflow does for one attempt of a queued task: admit, prepare, the worker's report, record. */
async function runAttempt(id: string, report: object): Promise<Task> {
  const queued = (await store.getById(id)) as Task;
  const lease = { owner: `${id}-1`, expiresAt: Date.now() + 60_000 };
  await store.put(transition(queued, 'running', { lease }, new Date()), queued.version);
  const event = { taskId: id, tenant: queued.tenant, executionName: `${id}-1` };
  expect(await prepare(event, lambdaContext('prepare'))).toMatchObject({ action: 'run' });
  await store.putAttemptReport(id, 1, { usage, changedFiles: [], ...report });
  await record({ ...event, attempt: 1 }, lambdaContext('record'));
  return (await store.getById(id)) as Task;
}
const announced = () =>
  sqs.commandCalls(SendMessageCommand).map((c) => JSON.parse(String(c.args[0].input.MessageBody)).taskId);

describe('an epic through the Step Functions workflow steps (DynamoDB Local)', () => {
  it('reads the plan in the record step, stores and announces the sub-tasks, and ends when they have', async () => {
    // Arrange: an epic whose planning agent answers a plan of two, the second after the first
    const epic = makeTask({ decompose: true, epic: { stage: 'planning' } });
    await store.create(epic);
    const plan = {
      tasks: [
        { key: 'first', prompt: 'First' },
        { key: 'second', prompt: 'Second', dependsOn: ['first'] },
      ],
    };
    // Act: the planning attempt
    const planned = await runAttempt(epic.id, { ok: true, summary: 'A plan.', plan });
    // Assert: the epic waits for its sub-tasks, the first of which is announced
    expect(planned).toMatchObject({ status: 'blocked', epic: { stage: 'running' } });
    const [first, second] = await Promise.all(
      (planned.epic?.children ?? []).map(async (c) => (await store.getById(c)) as Task),
    );
    expect([first?.key, first?.status, first?.parent]).toEqual(['first', 'queued', epic.id]);
    expect([second?.key, second?.status, second?.dependsOn]).toEqual(['second', 'blocked', [first?.id]]);
    expect(announced()).toEqual([first?.id]);
    // Act: the sub-tasks run, each released as the one before ends
    await runAttempt(first?.id as string, { ok: true, summary: 'Done.' });
    expect(announced()).toEqual([first?.id, second?.id]);
    await runAttempt(second?.id as string, { ok: true, summary: 'Done.' });
    // Assert
    const done = await store.getById(epic.id);
    expect(done).toMatchObject({
      status: 'succeeded',
      summary: 'All 2 sub-task(s) succeeded: first, second.',
    });
  });

  it('fails an epic whose plan is not valid, without a retry', async () => {
    const epic = makeTask({ decompose: true, epic: { stage: 'planning' } });
    await store.create(epic);
    const failed = await runAttempt(epic.id, { ok: true, summary: 'No plan, sorry.' });
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('invalid_plan');
    expect(failed.attempts).toHaveLength(1);
  });
});
