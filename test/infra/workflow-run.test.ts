import { beforeAll, describe, expect, it } from '@jest/globals';
import { StateMachine } from 'aws-local-stepfunctions';
import {
  prepareStep,
  recordStep,
  type StepDeps,
  WORKER_STATE_TIMEOUT_SECONDS,
} from '../../lib/aws/workflow-steps.js';
import { VersionConflictError } from '../../lib/core/errors.js';
import { transition } from '../../lib/core/lifecycle.js';
import type { ProviderState, ProviderStateStore } from '../../lib/core/provider-health.js';
import { type AgentRole, BUILT_IN_ROLES } from '../../lib/core/roles.js';
import type { Task } from '../../lib/core/schemas.js';
import { type AttemptOutcomeReport, prepareAttempt, recordAttempt } from '../../lib/core/workflow.js';
import { STATES } from '../../lib/infra/workflow.js';
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

/** The store the steps see: versions checked like DynamoDB's conditional writes. */
class MemoryStore implements ProviderStateStore {
  tasks = new Map<string, Task>();
  reports = new Map<string, unknown>();
  providers = new Map<string, ProviderState>();
  logs: string[] = [];
  async getProviderState(provider: string) {
    return structuredClone(this.providers.get(provider));
  }
  async putProviderState(state: ProviderState, expected: number) {
    if ((this.providers.get(state.provider)?.version ?? -1) !== expected)
      throw new VersionConflictError('moved');
    this.providers.set(state.provider, structuredClone(state));
  }
  async listProviderStates() {
    return [...this.providers.values()];
  }
  async getById(id: string) {
    return structuredClone(this.tasks.get(id));
  }
  async put(task: Task, expected: number) {
    if (this.tasks.get(task.id)?.version !== expected) throw new VersionConflictError('moved');
    this.tasks.set(task.id, structuredClone(task));
  }
  async appendLogs(_id: string, lines: string[]) {
    this.logs.push(...lines);
  }
  async getAttemptReport(id: string, attempt: number) {
    return this.reports.get(`${id}#${attempt}`);
  }
}

const usage = { inputTokens: 1, outputTokens: 1, costUsd: 0.001 };
/** What the worker does on each attempt: report an outcome, or fail the ECS state itself. */
type WorkerBehaviour = AttemptOutcomeReport | { ecsError: string };

let definition: ConstructorParameters<typeof StateMachine>[0];
beforeAll(() => {
  const { template } = synthStack();
  const machines = template.findResources('AWS::StepFunctions::StateMachine');
  const resource = Object.values(machines)[0];
  definition = resolveDefinition(resource?.Properties.DefinitionString) as unknown as typeof definition;
});

const NOW = new Date('2026-11-25T02:00:00Z');
const available = (p: string) => ['claude', 'codex'].includes(p);

/** Runs the synthesized state machine with every Task state overridden by the lib/aws steps over lib/core. */
async function runStateMachine(
  task: Task,
  behaviours: WorkerBehaviour[],
  opts: { providers?: ProviderState[]; tickMs?: number } = {},
) {
  const store = new MemoryStore();
  store.tasks.set(task.id, task);
  for (const p of opts.providers ?? []) store.providers.set(p.provider, p);
  let clock = NOW.getTime();
  const deps: StepDeps = {
    store,
    roles: BUILT_IN_ROLES,
    available,
    now: () => {
      clock += opts.tickMs ?? 0;
      return new Date(clock);
    },
    random: () => 0.5,
    health: { store },
  };
  const visited: string[] = [];
  let attempt = 0;
  const sm = new StateMachine(definition);
  const execution = sm.run(
    { taskId: task.id, tenant: task.tenant },
    {
      context: { Execution: { Name: `${task.id}-1` } },
      overrides: {
        taskResourceLocalHandlers: {
          [STATES.prepare]: async (input) => {
            const out = await prepareStep(deps, input);
            visited.push(out.action === 'wait' ? 'prepare (wait)' : 'prepare');
            return out as never;
          },
          [STATES.runWorker]: async (input) => {
            visited.push('worker');
            const env = (
              input as {
                Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] };
              }
            ).Overrides.ContainerOverrides[0]?.Environment;
            const n = Number(env?.find((e) => e.Name === 'AUTODEV_ATTEMPT')?.Value);
            attempt = n;
            const behaviour = behaviours[n - 1] ?? behaviours[behaviours.length - 1];
            if (behaviour && 'ecsError' in behaviour) {
              const err = new Error('the worker state failed');
              err.name = behaviour.ecsError;
              throw err;
            }
            store.reports.set(`${task.id}#${n}`, behaviour);
            return {};
          },
          [STATES.record]: async (input) => {
            visited.push('record');
            return (await recordStep(deps, input)) as never;
          },
        },
        waitTimeOverrides: { [STATES.backOff]: 0, [STATES.waitForProvider]: 0 },
        retryIntervalOverrides: { [STATES.prepare]: 0, [STATES.record]: 0, [STATES.runWorker]: 0 },
      },
    },
  );
  await execution.result;
  return { task: store.tasks.get(task.id) as Task, visited, attempts: attempt, store };
}

/** The same decisions taken directly through lib/core, as the local executor takes them. */
function decideDirectly(task: Task, behaviours: WorkerBehaviour[]): Task {
  let t = task;
  for (let i = 0; i < 25; i++) {
    const prep = prepareAttempt({
      task: t,
      role: BUILT_IN_ROLES[t.role],
      available,
      now: NOW,
      leaseOwner: `${task.id}-1`,
    });
    t = prep.task;
    if (prep.action === 'stop') return t;
    const b = behaviours[prep.plan.attempt - 1] ?? behaviours[behaviours.length - 1];
    const report: AttemptOutcomeReport =
      b && 'ecsError' in b
        ? {
            ok: false,
            errorClass: b.ecsError === 'States.Timeout' ? 'timeout' : 'crash',
            usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
          }
        : (b as AttemptOutcomeReport);
    const rec = recordAttempt({
      task: t,
      role: BUILT_IN_ROLES[t.role] ?? (BUILT_IN_ROLES.backend as AgentRole),
      attempt: prep.plan.attempt,
      report,
      available,
      now: NOW,
      leaseOwner: `${task.id}-1`,
      random: () => 0.5,
    });
    t = rec.task;
    if (rec.next.kind === 'finish') return t;
  }
  throw new Error('no decision after 25 steps');
}

/** A provider whose circuit breaker opened at NOW. */
function openBreaker(provider: string): ProviderState {
  return {
    provider,
    version: 0,
    breaker: { mode: 'open', failures: [NOW.getTime()], openedAt: NOW.getTime() },
    bucket: { tokens: 10, updatedAt: NOW.getTime() },
    recent: [false],
  };
}

/** A task the dispatcher admitted. */
function admitted(overrides: Partial<Task> = {}): Task {
  const task = makeTask({ createdAt: NOW.toISOString(), ...overrides });
  return transition(
    task,
    'running',
    { lease: { owner: `${task.id}-1`, expiresAt: NOW.getTime() + 60_000 } },
    NOW,
  );
}

const summary = (t: Task) => ({
  status: t.status,
  provider: t.provider,
  attempts: t.attempts.map((a) => [a.provider, a.outcome, a.errorClass]),
  error: t.error?.code,
  usage: t.usage.costUsd,
});

describe('synthesized state machine, run with aws-local-stepfunctions over lib/core', () => {
  it('succeeds on the first attempt: prepare, worker, record, done', async () => {
    const task = admitted();
    const behaviours = [{ ok: true, summary: 'done', branch: `autodev/${task.id}`, commit: 'c1', usage }];
    const run = await runStateMachine(task, behaviours);
    expect(run.visited).toEqual(['prepare', 'worker', 'record']);
    expect(summary(run.task)).toEqual({
      status: 'succeeded',
      provider: 'claude',
      attempts: [['claude', 'succeeded', undefined]],
      error: undefined,
      usage: 0.001,
    });
    expect(run.task.commit).toBe('c1');
    expect(summary(run.task)).toEqual(summary(decideDirectly(task, behaviours)));
  });

  it('retries on the same provider after a crash, through the back-off wait', async () => {
    const task = admitted();
    const behaviours = [
      { ok: false, errorClass: 'crash' as const, usage },
      { ok: true, usage },
    ];
    const run = await runStateMachine(task, behaviours);
    expect(run.visited).toEqual(['prepare', 'worker', 'record', 'prepare', 'worker', 'record']);
    expect(summary(run.task).attempts).toEqual([
      ['claude', 'failed', 'crash'],
      ['claude', 'succeeded', undefined],
    ]);
    expect(summary(run.task)).toEqual(summary(decideDirectly(task, behaviours)));
  });

  it('fails over to the next provider after a rate limit', async () => {
    const task = admitted();
    const behaviours = [
      { ok: false, errorClass: 'rate_limit' as const, usage },
      { ok: true, usage },
    ];
    const run = await runStateMachine(task, behaviours);
    expect(summary(run.task)).toMatchObject({
      status: 'succeeded',
      provider: 'codex',
      attempts: [
        ['claude', 'failed', 'rate_limit'],
        ['codex', 'succeeded', undefined],
      ],
    });
    expect(summary(run.task)).toEqual(summary(decideDirectly(task, behaviours)));
  });

  it('records worker timeouts and fails the task when its attempts run out', async () => {
    const task = admitted();
    const behaviours = [{ ecsError: 'States.Timeout' }];
    const run = await runStateMachine(task, behaviours);
    expect(run.attempts).toBe(BUILT_IN_ROLES.backend?.maxAttempts);
    expect(summary(run.task)).toMatchObject({ status: 'failed', error: 'timeout' });
    expect(run.task.attempts.every((a) => a.errorClass === 'timeout')).toBe(true);
    expect(summary(run.task)).toEqual(summary(decideDirectly(task, behaviours)));
  });

  it('records a worker that crashed without a report as a crash', async () => {
    const task = admitted({ role: 'security' });
    const run = await runStateMachine(task, [{ ecsError: 'States.TaskFailed' }]);
    expect(summary(run.task)).toMatchObject({ status: 'failed', error: 'crash' });
    expect(run.task.attempts).toHaveLength(2);
  });

  it('stops without running the worker when the task was cancelled before it started', async () => {
    const task = { ...admitted(), cancelRequested: true };
    const run = await runStateMachine(task, [{ ok: true, usage }]);
    expect(run.visited).toEqual(['prepare']);
    expect(run.task.status).toBe('cancelled');
  });

  it('passes over a provider whose circuit breaker is open (provider health shared through the store)', async () => {
    const task = admitted();
    const run = await runStateMachine(task, [{ ok: true, usage }], { providers: [openBreaker('claude')] });
    expect(summary(run.task)).toMatchObject({
      status: 'succeeded',
      attempts: [['codex', 'succeeded', undefined]],
    });
  });

  it('waits for a provider when every breaker is open, then runs the probe and closes the breaker', async () => {
    // Arrange: both breakers opened at NOW; they let a probe through 60 s later; each step is 40 s apart
    const task = admitted();
    // Act
    const run = await runStateMachine(task, [{ ok: true, usage }], {
      providers: [openBreaker('claude'), openBreaker('codex')],
      tickMs: 40_000,
    });
    // Assert
    expect(run.visited).toEqual(['prepare (wait)', 'prepare', 'worker', 'record']);
    expect(summary(run.task)).toMatchObject({
      status: 'succeeded',
      attempts: [['claude', 'succeeded', undefined]],
    });
    expect((await run.store.getProviderState('claude'))?.breaker.mode).toBe('closed');
  });

  it('records provider failures so that the breaker opens', async () => {
    const task = admitted();
    const run = await runStateMachine(task, [{ ok: false, errorClass: 'crash' as const, usage }]);
    expect(run.task.status).toBe('failed');
    expect((await run.store.getProviderState('claude'))?.breaker.failures).toHaveLength(3);
  });

  it('passes the plan’s Fargate size to the ECS state and stops a hung worker', () => {
    const states = (definition as unknown as { States: Record<string, Record<string, unknown>> }).States;
    const worker = states[STATES.runWorker];
    expect(worker?.Resource).toBe('arn:aws:states:::ecs:runTask.sync');
    expect(worker?.TimeoutSeconds).toBe(WORKER_STATE_TIMEOUT_SECONDS);
    expect(JSON.stringify(worker?.Parameters)).toContain('"Cpu.$":"$.prepared.plan.cpuUnits"');
    expect(JSON.stringify(worker?.Parameters)).toContain('"Memory.$":"$.prepared.plan.memory"');
  });
});
