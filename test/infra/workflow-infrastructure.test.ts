import { randomBytes } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StateMachine } from 'aws-local-stepfunctions';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { prepareStep, type RecordOutput, recordStep, type StepDeps } from '../../lib/aws/workflow-steps.js';
import { classifyWorkerFailure } from '../../lib/core/infrastructure.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
import type { Task } from '../../lib/core/schemas.js';
import type { AttemptOutcomeReport } from '../../lib/core/workflow.js';
import { STATES } from '../../lib/infra/workflow.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { makeTask } from '../support/tasks.js';
import { resolveDefinition, synthStack } from './synth.js';

// aws-local-stepfunctions 3 uses Promise.withResolvers, which Node 20 lacks
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve: unknown;
  let reject: unknown;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** How one RunTask of the worker state ends: the worker's report, or an error of the ECS integration. */
type RunTaskOutcome = AttemptOutcomeReport | { error: string; cause: string };

/** A Fargate task that stopped before its container ran (DescribeTasks, as the .sync integration gives it). */
const stoppedTask = (stoppedReason: string) =>
  JSON.stringify({
    Attachments: [],
    StopCode: 'TaskFailedToStart',
    StoppedReason: stoppedReason,
    Containers: [{ Name: 'worker', LastStatus: 'STOPPED' }],
  });

const CAPACITY = {
  error: 'ECS.AmazonECSException',
  cause: 'Capacity is unavailable at this time. Please try again later or in a different availability zone',
};
const THROTTLED = {
  error: 'ECS.AmazonECSException',
  cause: 'Rate exceeded (Service: AmazonECS; Status Code: 400; Error Code: ThrottlingException)',
};
const IMAGE_PULL = {
  error: 'States.TaskFailed',
  cause: stoppedTask(
    'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/worker:latest',
  ),
};
const SECRETS_INIT = {
  error: 'States.TaskFailed',
  cause: stoppedTask(
    'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed',
  ),
};
const CRASHED = {
  error: 'States.TaskFailed',
  cause: JSON.stringify({
    StopCode: 'EssentialContainerExited',
    StoppedReason: 'Essential container in task exited',
  }),
};
const OK: AttemptOutcomeReport = {
  ok: true,
  summary: 'done',
  usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 },
};

let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let definition: ConstructorParameters<typeof StateMachine>[0];
beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  const tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  const { template } = synthStack();
  const resource = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
  definition = resolveDefinition(resource?.Properties.DefinitionString) as unknown as typeof definition;
}, 60_000);
afterAll(async () => ddb?.stop());

/**
 * Runs the synthesized state machine over the DynamoDB Local store. Each RunTask of the worker
 * state takes the next outcome. Waits are real: the back-off state waits what the record step
 * says (the infrastructure backoff: 1 s, then 2 s), the worker state's own retries 50 ms.
 */
async function run(task: Task, outcomes: RunTaskOutcome[], maxRetries = 10) {
  await store.create(task);
  const deps: StepDeps = {
    store,
    roles: BUILT_IN_ROLES,
    available: (p) => ['claude', 'codex'].includes(p),
    random: () => 0.5,
    health: { store },
    infrastructure: { baseDelayMs: 1000, maxDelayMs: 2000, maxRetries },
  };
  const runTasks: number[] = [];
  const recorded: RecordOutput[] = [];
  let next = 0;
  const execution = new StateMachine(definition).run(
    { taskId: task.id, tenant: task.tenant },
    {
      context: { Execution: { Name: `${task.id}-1` } },
      overrides: {
        taskResourceLocalHandlers: {
          [STATES.prepare]: async (input) => (await prepareStep(deps, input)) as never,
          [STATES.runWorker]: async (input) => {
            const env = (
              input as {
                Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] };
              }
            ).Overrides.ContainerOverrides[0]?.Environment;
            const attempt = Number(env?.find((e) => e.Name === 'AUTODEV_ATTEMPT')?.Value);
            runTasks.push(attempt);
            const outcome = outcomes[Math.min(next++, outcomes.length - 1)] as RunTaskOutcome;
            if ('error' in outcome) {
              const err = new Error(outcome.cause);
              err.name = outcome.error;
              throw err;
            }
            await store.putAttemptReport(task.id, attempt, outcome);
            return {};
          },
          [STATES.record]: async (input) => {
            const out = await recordStep(deps, input);
            recorded.push(out);
            return out as never;
          },
        },
        retryIntervalOverrides: { [STATES.prepare]: 0, [STATES.record]: 0, [STATES.runWorker]: 50 },
      },
    },
  );
  const started = Date.now();
  await execution.result;
  return {
    task: (await store.getById(task.id)) as Task,
    runTasks,
    recorded,
    elapsedMs: Date.now() - started,
    claude: await store.getProviderState('claude'),
  };
}

describe('infrastructure failures on the state machine (aws-local-stepfunctions, DynamoDB Local)', () => {
  it('retries capacity, throttling and image-pull failures with backoff: no attempt used, no breaker tripped', async () => {
    // Arrange: ECS refuses the start twice (after the worker state's own retries), then a pull
    // failure and a secrets failure stop the Fargate task before the worker runs; then it runs
    const task = makeTask({ role: 'backend' });
    const outcomes = [
      CAPACITY,
      CAPACITY,
      CAPACITY,
      CAPACITY,
      THROTTLED,
      THROTTLED,
      THROTTLED,
      THROTTLED,
      IMAGE_PULL,
      SECRETS_INIT,
      OK,
    ];
    // Act
    const out = await run(task, outcomes);
    // Assert: one attempt, numbered 1, every RunTask for it; backoff doubled between the retries
    expect(out.task.status).toBe('succeeded');
    expect(out.task.attempts.map((a) => [a.number, a.outcome])).toEqual([[1, 'succeeded']]);
    expect(out.task.infrastructureRetries).toBeUndefined();
    expect(out.runTasks.every((n) => n === 1)).toBe(true);
    expect(out.runTasks).toHaveLength(outcomes.length);
    expect(out.recorded).toEqual([
      { next: 'retry', waitSeconds: 1 },
      { next: 'retry', waitSeconds: 2 },
      { next: 'retry', waitSeconds: 2 },
      { next: 'retry', waitSeconds: 2 },
      { next: 'finish', status: 'succeeded' },
    ]);
    expect(out.elapsedMs).toBeGreaterThanOrEqual(7000);
    expect(out.claude?.breaker).toMatchObject({ mode: 'closed', failures: [] });
    expect(out.claude?.recent).toEqual([true]);
    const logs = await store.readLogs(task.id, 0, 100);
    expect(logs.lines.filter((l) => l.text.includes('no attempt used'))).toHaveLength(4);
  }, 60_000);

  it('fails the task once the infrastructure stays unavailable, with no attempt and no provider failure', async () => {
    const task = makeTask({ role: 'backend' });
    const out = await run(task, [IMAGE_PULL], 2);
    expect(out.task.status).toBe('failed');
    expect(out.task.error?.code).toBe('infrastructure_unavailable');
    expect(out.task.attempts).toEqual([]);
    expect(out.recorded.map((r) => r.next)).toEqual(['retry', 'retry', 'finish']);
    expect(out.claude?.breaker.failures ?? []).toEqual([]);
    expect(out.claude?.recent.filter((ok) => !ok)).toEqual([]);
  }, 60_000);

  it('still records a worker that started and crashed as a crash attempt (it counts against the provider)', async () => {
    const task = makeTask({ role: 'backend' });
    const out = await run(task, [CRASHED, OK]);
    expect(out.task.attempts.map((a) => [a.number, a.outcome, a.errorClass])).toEqual([
      [1, 'failed', 'crash'],
      [2, 'succeeded', undefined],
    ]);
    // the provider's recent outcomes (shared by the tests above, which added one success) hold the crash
    expect(out.claude?.recent).toEqual([true, false, true]);
  }, 60_000);
});

describe('classifyWorkerFailure', () => {
  it.each([
    [CAPACITY, 'infrastructure'],
    [THROTTLED, 'infrastructure'],
    [{ error: 'ECS.ServerException', cause: 'internal' }, 'infrastructure'],
    [IMAGE_PULL, 'infrastructure'],
    [SECRETS_INIT, 'infrastructure'],
    [CRASHED, 'crash'],
    [{ error: 'States.Timeout', cause: '' }, 'timeout'],
    [{ error: 'States.TaskFailed', cause: 'the worker state failed' }, 'crash'],
  ])('%j is %s', (f, kind) => {
    expect(classifyWorkerFailure({ Error: f.error, Cause: f.cause })).toBe(kind);
  });
});
