import { StateMachine } from 'aws-local-stepfunctions';
import type { ProviderWaiters, TaskCallbacks, Waiter } from '../../lib/aws/provider-waiters.js';
import type { WorkflowInput } from '../../lib/aws/workflow-launcher.js';
import {
  continueStep,
  PARK_TIMEOUT_SECONDS,
  type PrepareOutput,
  parkStep,
  prepareStep,
  recordStep,
  type StepDeps,
} from '../../lib/aws/workflow-steps.js';
import { VersionConflictError } from '../../lib/core/errors.js';
import type { ProviderState, ProviderStateStore } from '../../lib/core/provider-health.js';
import type { ProviderLimits } from '../../lib/core/provider-slots.js';
import { type AgentRole, BUILT_IN_ROLES } from '../../lib/core/roles.js';
import type { Task } from '../../lib/core/schemas.js';
import type { AttemptOutcomeReport } from '../../lib/core/workflow.js';
import { STATES } from '../../lib/infra/workflow.js';

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

export type Definition = ConstructorParameters<typeof StateMachine>[0];

/** DynamoDB request units of one item of `bytes` (on-demand: 1 KB per write unit, 4 KB per read unit). */
const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const readUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 4096));
/** Task items are written to the table and to its two ALL-projected indexes (byTenant, byStatus). */
const TASK_ITEM_COPIES = 3;

/**
 * The tasks table as the workflow steps see it, in memory: versions checked like DynamoDB's
 * conditional writes, and every request counted in DynamoDB's on-demand units.
 */
export class SimStore implements ProviderStateStore, ProviderWaiters {
  tasks = new Map<string, Task>();
  reports = new Map<string, unknown>();
  providers = new Map<string, ProviderState>();
  logs: string[] = [];
  usage = { reads: 0, readUnits: 0, writes: 0, writeUnits: 0 };
  constructor(private readonly keepLogs = true) {}

  private read(bytes: number) {
    this.usage.reads++;
    this.usage.readUnits += readUnits(bytes);
  }
  private write(bytes: number, copies = 1) {
    this.usage.writes++;
    this.usage.writeUnits += writeUnits(bytes) * copies;
  }

  async getProviderState(provider: string) {
    const s = this.providers.get(provider);
    this.read(s ? JSON.stringify(s).length : 0);
    return structuredClone(s);
  }
  async putProviderState(state: ProviderState, expected: number) {
    if ((this.providers.get(state.provider)?.version ?? -1) !== expected) {
      this.write(0); // a failed conditional write is billed too
      throw new VersionConflictError('moved');
    }
    this.providers.set(state.provider, structuredClone(state));
    this.write(JSON.stringify(state).length + 60);
  }
  async listProviderStates() {
    return [...this.providers.values()];
  }
  async getById(id: string) {
    const t = this.tasks.get(id);
    this.read(t ? JSON.stringify(t).length + 200 : 0);
    return structuredClone(t);
  }
  /** The API's create (a conditional put of a new task). */
  async create(task: Task) {
    this.tasks.set(task.id, structuredClone(task));
    this.write(JSON.stringify(task).length + 200, TASK_ITEM_COPIES);
  }
  async put(task: Task, expected: number) {
    const before = this.tasks.get(task.id);
    if (before?.version !== expected) {
      this.write(0);
      throw new VersionConflictError('moved');
    }
    this.tasks.set(task.id, structuredClone(task));
    // + the keys-only byLease index while the task holds (or held) a lease
    this.write(JSON.stringify(task).length + 200, TASK_ITEM_COPIES);
    if (task.lease || before?.lease) this.usage.writeUnits++;
  }
  async appendLogs(_id: string, lines: string[]) {
    // the sequence counter, then one item per line
    this.write(50);
    for (const line of lines) this.write(line.length + 80);
    if (this.keepLogs) this.logs.push(...lines);
  }
  async getAttemptReport(id: string, attempt: number) {
    const r = this.reports.get(`${id}#${attempt}`);
    this.read(r ? JSON.stringify(r).length : 0);
    return r;
  }
  /** The worker's own writes: its report (and its lease heartbeats, counted by the caller). */
  putAttemptReport(id: string, attempt: number, report: unknown) {
    this.reports.set(`${id}#${attempt}`, report);
    this.write(JSON.stringify(report).length + 60);
  }
  /** A worker's heartbeat: a conditional write of the task item. */
  heartbeat(id: string) {
    const t = this.tasks.get(id);
    this.read(t ? JSON.stringify(t).length + 200 : 0);
    this.write(t ? JSON.stringify(t).length + 200 : 0, TASK_ITEM_COPIES);
    this.usage.writeUnits++;
  }

  /** Waiters by provider, then tenant, then waiter key; the tenant list's marks by provider. */
  waiting = new Map<string, Map<string, Map<string, Waiter>>>();
  marks = new Map<string, Map<string, string>>();
  private nextMark = 0;

  async add(provider: string, w: Waiter) {
    const tenants = this.waiting.get(provider) ?? new Map<string, Map<string, Waiter>>();
    const list = tenants.get(w.tenant) ?? new Map<string, Waiter>();
    list.set(w.key, w);
    tenants.set(w.tenant, list);
    this.waiting.set(provider, tenants);
    this.write(JSON.stringify(w).length + 60);
    const marks = this.marks.get(provider) ?? new Map<string, string>();
    marks.set(w.tenant, String(++this.nextMark));
    this.marks.set(provider, marks);
    this.write(80);
  }
  async tenants(provider: string) {
    const list = [...(this.marks.get(provider)?.entries() ?? [])].map(([tenant, mark]) => ({ tenant, mark }));
    this.read(list.length * 80);
    return list;
  }
  async heads(provider: string, tenant: string, limit: number) {
    const list = this.waiting.get(provider)?.get(tenant) ?? new Map<string, Waiter>();
    const keys = [...list.keys()].sort();
    const out: Waiter[] = [];
    for (const rank of ['0#', '1#', '2#']) {
      const page = keys.filter((k) => k.startsWith(rank)).slice(0, limit);
      this.read(page.length * 300);
      out.push(...page.map((k) => list.get(k) as Waiter));
    }
    return out;
  }
  async forget(provider: string, t: { tenant: string; mark: string }) {
    this.write(0);
    if (this.marks.get(provider)?.get(t.tenant) === t.mark) this.marks.get(provider)?.delete(t.tenant);
  }
  async take(provider: string, w: Waiter) {
    this.write(0);
    const list = this.waiting.get(provider)?.get(w.tenant);
    if (list?.get(w.key)?.taskToken !== w.taskToken) return false;
    return list.delete(w.key);
  }
  /** Every waiter of the provider, all tenants. */
  waitersOf(provider: string): Waiter[] {
    return [...(this.waiting.get(provider)?.values() ?? [])].flatMap((m) => [...m.values()]);
  }
}

/** Parked `.waitForTaskToken` states, resumed by SendTaskSuccess on their token. */
export class SimCallbacks implements TaskCallbacks {
  parked = new Map<string, () => void>();
  calls = 0;
  /** Runs between SendTaskSuccess and the parked state's resumption (a test's race). */
  beforeResume?: (taskToken: string) => Promise<void>;
  async resume(taskToken: string): Promise<'resumed' | 'gone'> {
    this.calls++;
    if (this.beforeResume && this.parked.has(taskToken)) await this.beforeResume(taskToken);
    const resolve = this.parked.get(taskToken);
    if (!resolve) return 'gone';
    this.parked.delete(taskToken);
    resolve();
    return 'resumed';
  }
}

/** What one worker does: report an outcome (after it ran), or fail the ECS state itself. */
export type WorkerBehaviour = AttemptOutcomeReport | { ecsError: string };

/** History events Step Functions writes per state entered (entered/exited, plus scheduled, started, submitted, succeeded for tasks). */
const LAMBDA_TASK_EVENTS = 5;
const CALLBACK_TASK_EVENTS = 6;
const PLAIN_STATE_EVENTS = 2;
const eventsOf = (state: string) =>
  state === STATES.prepare || state === STATES.record || state === STATES.continueAsNew
    ? LAMBDA_TASK_EVENTS
    : state === STATES.park || state === STATES.runWorker
      ? CALLBACK_TASK_EVENTS
      : PLAIN_STATE_EVENTS;

/** One execution of the state machine and what it cost. */
export interface SimExecution {
  name: string;
  taskId: string;
  /** State names in the order entered (a retried state counts again, as Step Functions bills it). */
  entered: string[];
  /** Estimated history length (Step Functions' own event count). */
  events: number;
  result: Promise<unknown>;
  done: boolean;
}

export interface WorkflowSimOptions {
  definition: Definition;
  store: SimStore;
  available: (provider: string) => boolean;
  limits: (provider: string) => ProviderLimits;
  /** Runs one attempt's worker: resolves with how it ended. */
  worker: (taskId: string, attempt: number) => Promise<WorkerBehaviour>;
  now?: () => Date;
  /** Wait states take no time (tests); otherwise they sleep (the bench fakes the clock). */
  zeroWaits?: boolean;
  /** @default BUILT_IN_ROLES */
  roles?: Record<string, AgentRole>;
  /** The roles' slot pools (their maxConcurrent); none: roles are not limited. */
  rolePools?: ProviderStateStore;
}

/**
 * The synthesized state machine run by aws-local-stepfunctions, with every Task state overridden by
 * the lib/aws steps over lib/core, provider waiters and callbacks in memory, and continuations
 * started as new executions of the same definition.
 */
export class WorkflowSim {
  readonly callbacks = new SimCallbacks();
  readonly executions = new Map<string, SimExecution>();
  readonly lambdaCalls: Record<string, number> = {};
  readonly deps: StepDeps;
  private tokens = 0;
  /** One machine for every execution: building one validates the whole definition. */
  private readonly machine: StateMachine;

  constructor(private readonly o: WorkflowSimOptions) {
    this.machine = new StateMachine(o.definition);
    this.deps = {
      store: o.store,
      roles: o.roles ?? BUILT_IN_ROLES,
      rolePools: o.rolePools,
      available: o.available,
      now: o.now,
      random: () => 0.5,
      health: { store: o.store, limits: o.limits },
      waiting: { waiters: o.store, callbacks: this.callbacks },
      launcher: { start: (name, input) => this.start(name, input) },
    };
  }

  private count(step: string) {
    this.lambdaCalls[step] = (this.lambdaCalls[step] ?? 0) + 1;
  }

  /** StartExecution: a name already started is not started again. */
  async start(name: string, input: WorkflowInput): Promise<{ executionArn: string; started: boolean }> {
    if (this.executions.has(name)) return { executionArn: name, started: false };
    const context = { Execution: { Name: name }, Task: { Token: `${name}#t${++this.tokens}` } };
    const sm = this.machine;
    const zero = this.o.zeroWaits ? 0 : undefined;
    const waits = [STATES.backOff, STATES.waitForProvider, STATES.waitForTurn];
    const run = sm.run(input as never, {
      context,
      overrides: {
        taskResourceLocalHandlers: this.handlers(context),
        ...(zero === undefined ? {} : { waitTimeOverrides: Object.fromEntries(waits.map((w) => [w, 0])) }),
        retryIntervalOverrides: {
          [STATES.prepare]: 0,
          [STATES.record]: 0,
          [STATES.runWorker]: 0,
          [STATES.park]: 0,
        },
      },
    });
    const exec: SimExecution = {
      name,
      taskId: input.taskId,
      entered: [],
      events: 2,
      result: run.result,
      done: false,
    };
    this.executions.set(name, exec);
    void (async () => {
      for await (const ev of run.eventLogs) {
        if (ev.type === 'StateEntered') {
          exec.entered.push(ev.state.name);
          exec.events += eventsOf(ev.state.name);
        } else if (ev.type === 'StateRetried') exec.events += 3;
      }
    })();
    exec.result = run.result.finally(() => {
      exec.done = true;
    });
    return { executionArn: name, started: true };
  }

  private handlers(context: { Execution: { Name: string }; Task: { Token: string } }) {
    const deps = this.deps;
    return {
      [STATES.prepare]: async (input: unknown) => {
        this.count('prepare');
        return (await prepareStep(deps, input)) as never;
      },
      [STATES.park]: async (raw: unknown) => {
        this.count('park');
        // a callback state invokes Lambda with its parameters: the payload is under Payload
        const input = (raw as { Payload: { taskToken: string } }).Payload;
        const token = input.taskToken;
        // the next park of this execution gets a new token, as in Step Functions
        context.Task.Token = `${context.Execution.Name}#t${++this.tokens}`;
        const resumed = new Promise<void>((resolve) => this.callbacks.parked.set(token, resolve));
        // the state times out after PARK_TIMEOUT_SECONDS (then prepares again): its token is gone
        const expiry = setTimeout(() => this.callbacks.parked.delete(token), PARK_TIMEOUT_SECONDS * 1000 - 1);
        // a test may end with executions still parked
        (expiry as { unref?: () => void }).unref?.();
        await parkStep(deps, input);
        await resumed;
        clearTimeout(expiry);
        return {};
      },
      [STATES.continueAsNew]: async (input: unknown) => {
        this.count('continue');
        return (await continueStep(deps, input)) as never;
      },
      [STATES.runWorker]: async (input: unknown) => {
        const env = (
          input as { Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] } }
        ).Overrides.ContainerOverrides[0]?.Environment;
        const value = (n: string) => env?.find((e) => e.Name === n)?.Value;
        const taskId = value('AUTODEV_TASK_ID') as string;
        const attempt = Number(value('AUTODEV_ATTEMPT'));
        const behaviour = await this.o.worker(taskId, attempt);
        if ('ecsError' in behaviour) {
          const err = new Error('the worker state failed');
          err.name = behaviour.ecsError;
          throw err;
        }
        this.o.store.putAttemptReport(taskId, attempt, behaviour);
        return {};
      },
      [STATES.record]: async (input: unknown) => {
        this.count('record');
        return (await recordStep(deps, input)) as never;
      },
    };
  }

  /** The executions of one task, in the order they started. */
  executionsOf(taskId: string): SimExecution[] {
    return [...this.executions.values()].filter((e) => e.taskId === taskId);
  }

  /** Whether the task's current execution is parked (its token waits for a callback). */
  parkedToken(taskId: string): string | undefined {
    return [...this.callbacks.parked.keys()].find((t) =>
      this.executionsOf(taskId).some((e) => t.startsWith(`${e.name}#`)),
    );
  }
}

/** Resolves once `cond` holds, checking between turns of the event loop (fails after `limit` turns). */
export async function until(cond: () => boolean, limit = 20_000): Promise<void> {
  for (let i = 0; i < limit; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}

export type { PrepareOutput };
