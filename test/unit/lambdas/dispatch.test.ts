import { DescribeTasksCommand, ECSClient, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { SqsTaskNotifier } from '../../../lib/aws/sqs-notifier.js';
import { transition } from '../../../lib/core/lifecycle.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { CLUSTER_ARN, lambdaEnvironment, STATE_MACHINE_ARN } from './environment.js';
import { lambdaContext, sqsFifoEvent } from './events.js';

const sfn = mockClient(SFNClient);
const ecs = mockClient(ECSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let handler: (event: SQSEvent, context: ReturnType<typeof lambdaContext>) => Promise<SQSBatchResponse>;
const invoke = (event: SQSEvent) => handler(event, lambdaContext('dispatch'));
const ready = (t: { id: string; tenant: string; version: number }) => ({
  kind: 'ready' as const,
  taskId: t.id,
  tenant: t.tenant,
  version: t.version,
});

beforeAll(async () => {
  ({ ddb, store } = await lambdaEnvironment());
  ({ handler } = await import('../../../lambdas/dispatch.js'));
}, 60_000);
afterEach(() => {
  sfn.reset();
  ecs.reset();
});
afterAll(async () => ddb?.stop());

describe('dispatch Lambda (SQS FIFO event source)', () => {
  it('admits a queued task and starts its workflow under the name task id + attempt + admission version', async () => {
    // Arrange
    const task = makeTask();
    await store.create(task);
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:x', startDate: new Date() });
    // Act
    const res = await invoke(sqsFifoEvent([ready(task)]));
    // Assert
    expect(res.batchItemFailures).toEqual([]);
    const stored = await store.getById(task.id);
    expect(stored?.status).toBe('running');
    expect(stored?.version).toBe(1);
    expect(stored?.lease?.owner).toBe(`${task.id}-1-v1`);
    expect(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input).toEqual({
      stateMachineArn: STATE_MACHINE_ARN,
      name: `${task.id}-1-v1`,
      input: JSON.stringify({ taskId: task.id, tenant: 'acme' }),
    });
  });

  it('moves a task once when its message is delivered twice', async () => {
    const task = makeTask();
    await store.create(task);
    sfn
      .on(StartExecutionCommand)
      .resolvesOnce({ executionArn: 'arn:x', startDate: new Date() })
      .rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    const first = await invoke(sqsFifoEvent([ready(task)]));
    const again = await invoke(sqsFifoEvent([ready(task)]));
    expect([...first.batchItemFailures, ...again.batchItemFailures]).toEqual([]);
    expect((await store.getById(task.id))?.version).toBe(1);
    const names = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name);
    expect(names).toEqual([`${task.id}-1-v1`, `${task.id}-1-v1`]);
  });

  it('ignores a message for a task that is no longer queued', async () => {
    const task = makeTask({ status: 'succeeded' });
    await store.create(task);
    const res = await invoke(sqsFifoEvent([ready(task)]));
    expect(res.batchItemFailures).toEqual([]);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('drops a malformed message instead of retrying it forever', async () => {
    const res = await invoke(sqsFifoEvent(['{"kind":"ready"']));
    expect(res.batchItemFailures).toEqual([]);
  });

  it("a tenant's poison message holds up neither its other tasks nor a cancel (a message group per task)", async () => {
    // Arrange: three messages of one tenant as the notifier sends them; the first keeps failing
    const poison = makeTask();
    const next = makeTask();
    const running = makeTask();
    for (const t of [poison, next, running]) await store.create(t);
    const arn = 'arn:aws:ecs:eu-west-1:123456789012:task/autodev/running';
    const attempt = {
      number: 1,
      provider: 'claude',
      startedAt: new Date().toISOString(),
      outcome: 'running' as const,
    };
    const cancelled = transition(
      running,
      'running',
      {
        attempts: [{ ...attempt, workerRef: arn }],
        lease: { owner: 'x', expiresAt: Date.now() + 60_000 },
        cancelRequested: true,
      },
      new Date(),
    );
    await store.put(cancelled, 0);
    const sqs = mockClient(SQSClient);
    sqs.on(SendMessageCommand).resolves({});
    const notifier = new SqsTaskNotifier(
      new SQSClient({}),
      'https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo',
    );
    await notifier.taskReady(poison);
    await notifier.taskReady(next);
    await notifier.cancelRequested(cancelled);
    const sent = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    sqs.restore();
    sfn
      .on(StartExecutionCommand)
      .rejects(new Error('poison'))
      .on(StartExecutionCommand, { name: `${next.id}-1-v1` })
      .resolves({ executionArn: 'arn:x', startDate: new Date() });
    ecs.on(StopTaskCommand).resolves({});
    const event = sqsFifoEvent(sent.map((m) => JSON.parse(String(m.MessageBody))));
    // the event source mapping delivers each message with the group the notifier gave it
    event.Records.forEach((r, i) => {
      r.attributes.MessageGroupId = String(sent[i]?.MessageGroupId);
    });
    // Act
    const res = await invoke(event);
    // Assert: only the poison message is handed back; the tenant's next task starts, the cancel stops
    expect(new Set(sent.map((m) => m.MessageGroupId)).size).toBe(3);
    expect(res.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['msg-0']);
    expect((await store.getById(next.id))?.status).toBe('running');
    expect(ecs.commandCalls(StopTaskCommand).map((c) => c.args[0].input.task)).toEqual([arn]);
  });

  it('reports failed starts and still starts the other tasks', async () => {
    const a = makeTask();
    const b = makeTask();
    const other = makeTask({ tenant: 'globex' });
    for (const t of [a, b, other]) await store.create(t);
    sfn
      .on(StartExecutionCommand)
      .rejects(new Error('throttled'))
      .on(StartExecutionCommand, { name: `${other.id}-1-v1` })
      .resolves({ executionArn: 'arn:x', startDate: new Date() });
    const res = await invoke(sqsFifoEvent([ready(a), ready(b), ready(other)]));
    expect(res.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['msg-0', 'msg-1']);
    expect((await store.getById(other.id))?.status).toBe('running');
  });

  it("stops the cancelled task's own Fargate task by the ARN its attempt recorded, without listing the cluster", async () => {
    // Arrange: a running task whose worker recorded its ECS task ARN (the worker's first heartbeat)
    const task = makeTask();
    await store.create(task);
    const arn = 'arn:aws:ecs:eu-west-1:123456789012:task/autodev/0123456789abcdef';
    const attempt = {
      number: 1,
      provider: 'claude',
      startedAt: new Date().toISOString(),
      outcome: 'running' as const,
    };
    await store.put(
      transition(
        task,
        'running',
        {
          attempts: [{ ...attempt, workerRef: arn }],
          lease: { owner: 'x', expiresAt: Date.now() + 60_000 },
          cancelRequested: true,
        },
        new Date(),
      ),
      0,
    );
    ecs.on(StopTaskCommand).resolves({});
    // Act
    const res = await invoke(sqsFifoEvent([{ kind: 'cancel', taskId: task.id, tenant: 'acme', version: 2 }]));
    // Assert
    expect(res.batchItemFailures).toEqual([]);
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(0);
    expect(ecs.commandCalls(DescribeTasksCommand)).toHaveLength(0);
    expect(ecs.commandCalls(StopTaskCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: CLUSTER_ARN, task: arn, reason: 'Cancelled through the AutoDev API' },
    ]);
  });

  it('stops nothing when the worker has not recorded itself yet, or has already stopped', async () => {
    // Arrange: one task whose worker has not started, one whose ECS task is gone
    const waiting = makeTask();
    const gone = makeTask();
    for (const t of [waiting, gone]) await store.create(t);
    const attempt = {
      number: 1,
      provider: 'claude',
      startedAt: new Date().toISOString(),
      outcome: 'running' as const,
    };
    const lease = { owner: 'x', expiresAt: Date.now() + 60_000 };
    await store.put(transition(waiting, 'running', { attempts: [attempt], lease }, new Date()), 0);
    await store.put(
      transition(
        gone,
        'running',
        {
          attempts: [{ ...attempt, workerRef: 'arn:aws:ecs:eu-west-1:123456789012:task/autodev/gone' }],
          lease,
        },
        new Date(),
      ),
      0,
    );
    ecs
      .on(StopTaskCommand)
      .rejects(
        Object.assign(new Error('The referenced task was not found.'), { name: 'InvalidParameterException' }),
      );
    // Act
    const res = await invoke(
      sqsFifoEvent([
        { kind: 'cancel', taskId: waiting.id, tenant: 'acme', version: 2 },
        { kind: 'cancel', taskId: gone.id, tenant: 'acme', version: 2 },
      ]),
    );
    // Assert
    expect(res.batchItemFailures).toEqual([]);
    expect(ecs.commandCalls(StopTaskCommand).map((c) => c.args[0].input.task)).toEqual([
      'arn:aws:ecs:eu-west-1:123456789012:task/autodev/gone',
    ]);
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(0);
  });
});
