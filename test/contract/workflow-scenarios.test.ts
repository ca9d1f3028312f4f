import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StateMachine } from 'aws-local-stepfunctions';
import { dispatchMessage } from '../../lib/aws/dispatch.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { reap } from '../../lib/aws/reaper.js';
import type { TaskMessage } from '../../lib/aws/task-messages.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { prepareStep, recordStep, type StepDeps } from '../../lib/aws/workflow-steps.js';
import { InfrastructureError } from '../../lib/core/infrastructure.js';
import { DEFAULT_BREAKER, DEFAULT_RATE } from '../../lib/core/provider-health.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
import { isTerminal, type Task } from '../../lib/core/schemas.js';
import type { AttemptOutcomeReport } from '../../lib/core/workflow.js';
import { type EngineDeps, mutateTask, prepareNext } from '../../lib/core/workflow-engine.js';
import { STATES } from '../../lib/infra/workflow.js';
import { LocalExecutor } from '../../lib/local/executor.js';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { createDrivers } from '../../lib/worker/drivers/index.js';
import type { AttemptReport, ProviderConfig } from '../../lib/worker/run-attempt.js';
import { GitWorkspaces } from '../../lib/worker/workspace.js';
import { resolveDefinition, synthStack } from '../infra/synth.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { FAKES, tempDir } from '../support/local-platform.js';
import { makeTask } from '../support/tasks.js';

/**
 * One scenario table, run through both engines: the local executor over SQLite, and the Step
 * Functions workflow (the synthesized state machine in aws-local-stepfunctions, its Lambda steps,
 * the dispatcher and the reaper) over DynamoDB Local. The worker is scripted the same way in both:
 * each time an engine starts a worker for a task, it takes that task's next outcome. Both must end
 * every scenario the same: status, error code, and each attempt's provider and outcome.
 */

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

/** What one worker start does: reports how the attempt ended, never starts, or is cancelled while it runs. */
type Outcome = AttemptOutcomeReport | 'not_started' | 'cancelled_while_running';

interface Scenario {
  name: string;
  role?: string;
  requestedProvider?: string;
  pin?: boolean;
  /** The task's worker starts, in order (the last one repeats). */
  worker: Outcome[];
  /** A task this one depends on, with its own worker script. */
  dependency?: Outcome[];
  /** Attempt 1 was started by an executor that was then lost, and its lease has expired. */
  lostFirstAttempt?: boolean;
  expect: { status: Task['status']; error?: string; attempts: [string, string][]; workerStarts: number };
}

const usage = { inputTokens: 100, outputTokens: 10, costUsd: 0.01 };
const OK: AttemptOutcomeReport = { ok: true, summary: 'done', usage };
const fails = (
  errorClass: AttemptOutcomeReport['errorClass'],
  extra: Partial<AttemptOutcomeReport> = {},
) => ({
  ok: false,
  errorClass,
  message: `scripted ${errorClass}`,
  usage,
  ...extra,
});

const SCENARIOS: Scenario[] = [
  {
    name: 'succeeds on the first attempt',
    worker: [OK],
    expect: { status: 'succeeded', attempts: [['claude', 'succeeded']], workerStarts: 1 },
  },
  {
    name: 'the provider crashes, then the retry on the same provider succeeds',
    worker: [fails('crash'), OK],
    expect: {
      status: 'succeeded',
      attempts: [
        ['claude', 'failed'],
        ['claude', 'succeeded'],
      ],
      workerStarts: 2,
    },
  },
  {
    name: 'a rate limit fails over to the next provider of the role',
    worker: [fails('rate_limit'), OK],
    expect: {
      status: 'succeeded',
      attempts: [
        ['claude', 'failed'],
        ['codex', 'succeeded'],
      ],
      workerStarts: 2,
    },
  },
  {
    name: "a requested provider is a preference: a rate limit fails over to the role's order",
    requestedProvider: 'codex',
    worker: [fails('rate_limit'), OK],
    expect: {
      status: 'succeeded',
      attempts: [
        ['codex', 'failed'],
        ['claude', 'succeeded'],
      ],
      workerStarts: 2,
    },
  },
  {
    name: 'provider "auto" routes each attempt, leaving out the provider that just rate limited it',
    requestedProvider: 'auto',
    worker: [fails('rate_limit'), OK],
    expect: {
      status: 'succeeded',
      attempts: [
        ['claude', 'failed'],
        ['codex', 'succeeded'],
      ],
      workerStarts: 2,
    },
  },
  {
    name: 'a pinned provider is kept after a rate limit (no failover)',
    requestedProvider: 'claude',
    pin: true,
    worker: [fails('rate_limit'), OK],
    expect: {
      status: 'succeeded',
      attempts: [
        ['claude', 'failed'],
        ['claude', 'succeeded'],
      ],
      workerStarts: 2,
    },
  },
  {
    name: 'every attempt of the role used: the task fails with the last error',
    role: 'security',
    worker: [fails('crash')],
    expect: {
      status: 'failed',
      error: 'crash',
      attempts: [
        ['claude', 'failed'],
        ['claude', 'failed'],
      ],
      workerStarts: 2,
    },
  },
  {
    name: 'cancelled while the attempt runs',
    worker: ['cancelled_while_running'],
    expect: { status: 'cancelled', error: 'cancelled', attempts: [['claude', 'cancelled']], workerStarts: 1 },
  },
  {
    name: 'the lease of a lost attempt expires: reaped, re-queued and retried',
    lostFirstAttempt: true,
    worker: [OK],
    expect: {
      status: 'succeeded',
      attempts: [
        ['claude', 'abandoned'],
        ['claude', 'succeeded'],
      ],
      workerStarts: 1,
    },
  },
  {
    name: 'blocked on a dependency, released when it succeeds',
    dependency: [OK],
    worker: [OK],
    expect: { status: 'succeeded', attempts: [['claude', 'succeeded']], workerStarts: 1 },
  },
  {
    name: 'a dependency that failed fails the task without an attempt',
    dependency: [fails('workspace')],
    worker: [OK],
    expect: { status: 'failed', error: 'dependency_failed', attempts: [], workerStarts: 0 },
  },
  {
    name: 'the budget is exceeded: the task fails without a retry',
    worker: [fails('budget', { fatalCode: 'budget_exceeded', message: 'the attempt reached its budget' })],
    expect: { status: 'failed', error: 'budget_exceeded', attempts: [['claude', 'failed']], workerStarts: 1 },
  },
  {
    name: 'a worker that could not be started uses no attempt',
    worker: ['not_started', OK],
    expect: { status: 'succeeded', attempts: [['claude', 'succeeded']], workerStarts: 2 },
  },
];

/** Policies both engines run with: short waits, no jitter. */
const RETRY = { baseDelayMs: 20, maxDelayMs: 40 };
const INFRASTRUCTURE = { baseDelayMs: 20, maxDelayMs: 40, maxRetries: 3 };
const random = () => 0.5;

/** Each task's script, consumed one worker start at a time. */
class Scripts {
  private readonly scripts = new Map<string, Outcome[]>();
  readonly starts = new Map<string, number>();
  set(taskId: string, outcomes: Outcome[]) {
    this.scripts.set(taskId, outcomes);
  }
  next(taskId: string): Outcome {
    const n = this.starts.get(taskId) ?? 0;
    this.starts.set(taskId, n + 1);
    const script = this.scripts.get(taskId) ?? [];
    return script[Math.min(n, script.length - 1)] ?? OK;
  }
}

/** The tasks of a scenario, as the API creates them: the main task blocked when it has a dependency. */
function tasksOf(s: Scenario): { main: Task; dependency?: Task } {
  const dependency = s.dependency ? makeTask() : undefined;
  const main = makeTask({
    role: s.role ?? 'backend',
    requestedProvider: s.requestedProvider,
    ...(s.pin ? { pin: true } : {}),
    ...(dependency ? { status: 'blocked' as const, dependsOn: [dependency.id] } : {}),
  });
  return { main, dependency };
}

/** A cancel as the API requests it on a running task: the flag, with a conditional write. */
async function requestCancel(store: EngineDeps['store'], taskId: string): Promise<Task | undefined> {
  const moved = await mutateTask(store, taskId, (t) =>
    t.cancelRequested ? undefined : { ...t, cancelRequested: true, version: t.version + 1 },
  );
  return moved?.after;
}

/**
 * The state a lost executor leaves: it admitted the task and started attempt 1 through the shared
 * prepare step under its lease, then vanished; the lease has since expired.
 */
async function startLostAttempt(deps: EngineDeps, task: Task, owner: string, at: Date, leaseMs?: number) {
  const admitted = await mutateTask(deps.store, task.id, (t) => ({
    ...t,
    status: 'running' as const,
    lease: { owner, expiresAt: at.getTime() + 60_000 },
    version: t.version + 1,
  }));
  expect(admitted?.after?.status).toBe('running');
  const prepared = await prepareNext(deps, { taskId: task.id, leaseOwner: owner, now: at, leaseMs });
  expect(prepared?.action).toBe('run');
}

const summary = (t: Task | undefined, starts: number) => ({
  status: t?.status,
  error: t?.error?.code,
  attempts: (t?.attempts ?? []).map((a) => [a.provider, a.outcome]),
  workerStarts: starts,
});

type Engine = (s: Scenario) => Promise<ReturnType<typeof summary>>;

// ---------------------------------------------------------------- the local executor over SQLite

const localDir = tempDir('autodev-scenarios-');

function localProviders(): Record<string, ProviderConfig> {
  const drivers = createDrivers();
  const config = (name: 'claude' | 'codex'): ProviderConfig => ({
    name,
    driver: drivers[name] as ProviderConfig['driver'],
    bin: join(FAKES, name),
    env: {},
  });
  return { claude: config('claude'), codex: config('codex') };
}

const runLocal: Engine = async (s) => {
  const dir = join(localDir, randomBytes(4).toString('hex'));
  const store = new SqliteTaskStore(join(dir, 'tasks.db'));
  const scripts = new Scripts();
  let executor: LocalExecutor | undefined;
  const runAttempt = async (ctx: { task: Task; signal: AbortSignal }): Promise<AttemptReport> => {
    const outcome = scripts.next(ctx.task.id);
    if (outcome === 'not_started') throw new InfrastructureError('no worker slot could be set up');
    if (outcome === 'cancelled_while_running') {
      const marked = await requestCancel(store, ctx.task.id);
      if (marked) await executor?.cancelRequested(marked);
      await new Promise((r) => (ctx.signal.aborted ? r(undefined) : ctx.signal.addEventListener('abort', r)));
      return { ok: false, errorClass: 'crash', message: 'the attempt was stopped', usage, changedFiles: [] };
    }
    return { changedFiles: [], ...outcome };
  };
  executor = new LocalExecutor({
    store,
    workspaces: new GitWorkspaces({
      root: join(dir, 'workspaces'),
      mirrors: join(dir, 'mirrors'),
      authorName: 'Test',
      authorEmail: 'test@example.com',
      branchPrefix: 'autodev/',
    }),
    roles: BUILT_IN_ROLES,
    providers: localProviders(),
    concurrency: 2,
    leaseMs: 2000,
    pollMs: 50,
    defaultTimeoutSeconds: 60,
    retryPolicy: RETRY,
    random,
    infrastructure: INFRASTRUCTURE,
    baseEnv: { PATH: process.env.PATH ?? '', ANTHROPIC_API_KEY: 'sk-ant-test', OPENAI_API_KEY: 'sk-test' },
    health: { store, breaker: DEFAULT_BREAKER, rate: DEFAULT_RATE },
    modelGateway: false,
    runAttempt,
  });
  const { main, dependency } = tasksOf(s);
  for (const t of [dependency, main]) if (t) await store.create(t);
  scripts.set(main.id, s.worker);
  if (dependency && s.dependency) scripts.set(dependency.id, s.dependency);
  if (s.lostFirstAttempt) {
    // an executor on another host, gone: known to be lost only by its lease's expiry
    const deps = { store, roles: BUILT_IN_ROLES, available: () => true };
    await startLostAttempt(deps, main, 'elsewhere/4242/lost', new Date(Date.now() - 60_000), 1000);
  }
  await executor.start();
  try {
    const deadline = Date.now() + 20_000;
    let task = await store.getById(main.id);
    while (task && !isTerminal(task.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      task = await store.getById(main.id);
    }
    return summary(task, scripts.starts.get(main.id) ?? 0);
  } finally {
    await executor.stop(2000);
    store.close();
  }
};

// ---------------------------------------------------------------- Step Functions over DynamoDB Local

let ddb: DynamoDbLocal;
let definition: ConstructorParameters<typeof StateMachine>[0];

/** ECS's stop of the worker container, as the .sync integration reports it. */
const stoppedWorker = (stopCode: string, reason: string) => {
  const err = new Error(JSON.stringify({ StopCode: stopCode, StoppedReason: reason }));
  err.name = 'States.TaskFailed';
  return err;
};

const runAws: Engine = async (s) => {
  const tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  const store = new DynamoTaskStore({ client: ddb.client, tableName });
  const scripts = new Scripts();
  // simulated time: a lost execution's lease expires when the clock jumps
  let offset = 0;
  const now = () => new Date(Date.now() + offset);
  const deps: StepDeps = {
    store,
    roles: BUILT_IN_ROLES,
    available: (p) => ['claude', 'codex'].includes(p),
    now,
    policy: RETRY,
    random,
    infrastructure: INFRASTRUCTURE,
    health: { store },
  };
  const queue: TaskMessage[] = [];
  const notifier = {
    taskReady: async (t: Task) => {
      queue.push({ kind: 'ready', taskId: t.id, tenant: t.tenant, version: t.version });
    },
  };
  const worker = async (input: unknown) => {
    const env = (
      input as { Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] } }
    ).Overrides.ContainerOverrides[0]?.Environment;
    const value = (name: string) => env?.find((e) => e.Name === name)?.Value ?? '';
    const taskId = value('AUTODEV_TASK_ID');
    const attempt = Number(value('AUTODEV_ATTEMPT'));
    const outcome = scripts.next(taskId);
    if (outcome === 'not_started') {
      throw stoppedWorker(
        'TaskFailedToStart',
        'CannotPullContainerError: pull image manifest has been retried',
      );
    }
    if (outcome === 'cancelled_while_running') {
      const marked = await requestCancel(store, taskId);
      if (marked) queue.push({ kind: 'cancel', taskId, tenant: marked.tenant, version: marked.version });
      throw stoppedWorker('UserInitiated', 'Cancelled through the AutoDev API');
    }
    await store.putAttemptReport(taskId, attempt, outcome);
    return {};
  };
  const launcher = {
    start: async (name: string, input: { taskId: string; tenant: string }) => {
      const execution = new StateMachine(definition).run(input, {
        context: { Execution: { Name: name } },
        overrides: {
          taskResourceLocalHandlers: {
            [STATES.prepare]: async (i) => (await prepareStep(deps, i)) as never,
            [STATES.runWorker]: async (i) => (await worker(i)) as never,
            [STATES.record]: async (i) => (await recordStep(deps, i)) as never,
          },
          waitTimeOverrides: { [STATES.backOff]: 0, [STATES.waitForProvider]: 0 },
          retryIntervalOverrides: { [STATES.prepare]: 0, [STATES.record]: 0, [STATES.runWorker]: 0 },
        },
      });
      await execution.result;
      return { executionArn: `arn:aws:states:::execution:autodev:${name}`, started: true };
    },
  };
  const dispatch = (m: TaskMessage) =>
    dispatchMessage({ store, launcher, stopper: { stop: async () => [] }, now }, m);
  const { main, dependency } = tasksOf(s);
  for (const t of [dependency, main]) if (t) await store.create(t);
  scripts.set(main.id, s.worker);
  if (dependency && s.dependency) scripts.set(dependency.id, s.dependency);
  if (s.lostFirstAttempt) {
    // an execution that started attempt 1 and was lost; two hours later its lease has expired
    await startLostAttempt(deps, main, `${main.id}-lost`, now());
    offset += 2 * 3600_000;
  } else {
    for (const t of [dependency, main]) if (t?.status === 'queued') await notifier.taskReady(t);
  }
  // the queue's consumer (dispatch) and the scheduled reaper, until nothing is left to do
  for (let round = 0; round < 20; round++) {
    while (queue.length > 0) await dispatch(queue.shift() as TaskMessage);
    await reap({ store, notifier, roles: BUILT_IN_ROLES, now });
    if (queue.length === 0) break;
  }
  return summary(await store.getById(main.id), scripts.starts.get(main.id) ?? 0);
};

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  const { template } = synthStack();
  const resource = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
  definition = resolveDefinition(resource?.Properties.DefinitionString) as unknown as typeof definition;
}, 120_000);
afterAll(async () => ddb?.stop());

const ENGINES: [string, Engine][] = [
  ['the local executor over SQLite', runLocal],
  ['the Step Functions workflow over DynamoDB Local', runAws],
];

describe.each(ENGINES)('workflow scenarios on %s', (_engine, run) => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))(
    '%s',
    async (_name, scenario) => {
      // Act
      const result = await run(scenario);
      // Assert
      expect(result).toEqual({ error: undefined, ...scenario.expect });
    },
    60_000,
  );
});
