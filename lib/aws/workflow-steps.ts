import { z } from 'zod';
import { NotFoundError } from '../core/errors.js';
import { classifyWorkerFailure } from '../core/infrastructure.js';
import { type ProviderState, type ProviderStateStore, updateProviderState } from '../core/provider-health.js';
import {
  admitProviderSlot,
  DEFAULT_PROVIDER_LIMITS,
  type ProviderLimits,
  releaseSlot,
  slotKey,
  slotResult,
} from '../core/provider-slots.js';
import { admitRoleSlot, roleOfQueue, rolePoolLimits, roleQueue } from '../core/role-slots.js';
import type { AgentRole } from '../core/roles.js';
import type { Task } from '../core/schemas.js';
import { unreserve, waiterKey } from '../core/slot-handoff.js';
import {
  type AttemptOutcomeReport,
  type AttemptPlan,
  LEASE_MARGIN_SECONDS,
  providerCandidates,
} from '../core/workflow.js';
import {
  type Admission,
  type EngineDeps,
  mutateTask,
  type ProviderHealth,
  prepareNext,
  recordInfrastructureNext,
  recordNext,
} from '../core/workflow-engine.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';
import { fargateSize } from './fargate.js';
import { type ProviderWaiters, type TaskCallbacks, type Waiter, wakeWaiters } from './provider-waiters.js';
import type { StepFunctionsLauncher } from './workflow-launcher.js';

/**
 * The Lambda steps run the shared workflow steps (lib/core/workflow-engine) over DynamoDB, with
 * admission by concurrency slot (core provider-slots.ts) and parking for full providers.
 */
export interface StepDeps extends Omit<EngineDeps, 'health'> {
  store: Pick<DynamoTaskStore, 'getById' | 'put' | 'appendLogs' | 'getAttemptReport'>;
  now?: () => Date;
  /**
   * Provider health shared by every execution (circuit breaker, token bucket, concurrency slots);
   * none: every provider admits. `limits` @default DEFAULT_PROVIDER_LIMITS
   */
  health?: ProviderHealth & { limits?: (provider: string) => ProviderLimits };
  /**
   * The agent roles' slot pools (core role-slots.ts): a role with `maxConcurrent` admits that many
   * attempts at once, its next ones park on its own waiter queue (`role:<name>`). None: roles are
   * not limited.
   */
  rolePools?: ProviderStateStore;
  /** Where executions park while their providers are full, and how they are resumed. */
  waiting?: { waiters: ProviderWaiters; callbacks: TaskCallbacks };
  /** Starts the fresh execution a long wait continues in (this state machine). */
  launcher?: Pick<StepFunctionsLauncher, 'start'>;
  /** Told once when this step moved a task to its end (succeeded, failed, cancelled): notifications. */
  onFinished?: (task: Task) => Promise<void>;
}

export const PrepareInput = z.object({
  taskId: z.string(),
  tenant: z.string(),
  executionName: z.string(),
  /**
   * The execution's state (`$`): how many times it has waited in a row (`prepared.waits`), and
   * where it was parked if it was (`prepared.action` 'park', `prepared.providers`).
   */
  state: z
    .object({
      prepared: z
        .object({
          waits: z.number().int().nonnegative().optional(),
          action: z.string().optional(),
          providers: z.array(z.string()).optional(),
        })
        .loose()
        .optional(),
    })
    .loose()
    .optional(),
});

/** What the state machine reads after prepare: run the worker with this plan, wait, or stop. */
export type PrepareOutput =
  | {
      action: 'run';
      plan: AttemptPlan & {
        /** Fargate CPU units and memory (MiB) as strings, the form ECS overrides take. */
        cpuUnits: string;
        memory: string;
      };
      /** The provider's token bucket gives this attempt its turn this many seconds from now. */
      startInSeconds?: number;
    }
  | { action: 'stop'; reason: string; status: string }
  /** A circuit breaker is open: wait this long, then prepare again. `waits`: in a row, this one included. */
  | { action: 'wait'; waitSeconds: number; reason: string; waits: number }
  /**
   * Every candidate provider is full, or the task's role is (`providers`: `role:<name>`): park until
   * a slot frees on one of them (`parkStep`).
   */
  | { action: 'park'; providers: string[]; waiterKey: string; reason: string; waits: number }
  /** The execution has waited CONTINUE_AFTER_WAITS times: continue in a fresh one (`continueStep`). */
  | { action: 'continue'; reason: string; waits: number };

/**
 * The longest a parked execution waits for a callback before it prepares again on its own, a safety
 * net only: slots that lapsed without a release (a lost worker, a reservation never taken) are
 * handed on by the reaper, which wakes the waiters of every provider with free slots on each pass,
 * and a waiter is removed only after its execution was resumed. Longer than a wait behind a full
 * provider usually lasts, so that a waiting task parks once (7 + 3 transitions).
 */
export const PARK_TIMEOUT_SECONDS = 24 * 3600;

/**
 * Waits in a row (parks and timed waits) after which an execution continues in a fresh one: each
 * wait adds 13 events to the history (prepare 5, choice 2, park 6), so no history grows past
 * ~1,400 events, far below Step Functions' 25,000.
 */
export const CONTINUE_AFTER_WAITS = 100;

const limitsOf = (deps: StepDeps) => deps.health?.limits ?? (() => DEFAULT_PROVIDER_LIMITS);

/**
 * Admission by slot: the first candidate with a free slot (its token maybe taken ahead of time: the
 * delay), or how to wait: a timed wait while a circuit breaker is open, else parked until a slot
 * frees on one of the full providers.
 */
async function admitSlots(
  deps: StepDeps,
  health: ProviderHealth,
  candidates: string[],
  task: Task,
  role: AgentRole,
  now: Date,
  parkedOn: readonly string[],
): Promise<Admission> {
  const holdUntil = holdUntilOf(deps, task, role, now);
  const key = slotKey(task.id, task.attempts.length + 1);
  const skipped: string[] = [];
  const full: string[] = [];
  let waitMs = Number.POSITIVE_INFINITY;
  for (const p of candidates) {
    const limits = limitsOf(deps)(p);
    const a = await admitProviderSlot(
      health.store,
      p,
      key,
      now.getTime(),
      holdUntil,
      limits,
      health.breaker,
      task.tenant,
    );
    if (a.ok) {
      // woken on several providers, it takes one slot: a slot reserved for it elsewhere goes on
      for (const q of parkedOn)
        if (q !== p) await changeAndHandOff(deps, q, now, (s) => unreserve(s, [task.id], now.getTime()));
      return { provider: p, skipped, delayMs: a.delayMs };
    }
    if (a.reason === 'full') {
      full.push(p);
      skipped.push(`${p} (all ${limits.concurrency} slots taken)`);
    } else {
      skipped.push(`${p} (circuit breaker open)`);
      waitMs = Math.min(waitMs, a.retryAfterMs);
    }
  }
  const reason = `no provider admits work now: ${skipped.join(', ')}`;
  // a breaker reopens on a clock, not on a release: wait for it rather than park
  if (Number.isFinite(waitMs) || !deps.waiting) {
    return {
      waitMs: Math.max(1000, Number.isFinite(waitMs) ? waitMs : PARK_TIMEOUT_SECONDS * 1000),
      reason,
      skipped,
    };
  }
  return { waitMs: PARK_TIMEOUT_SECONDS * 1000, reason, skipped, park: full };
}

/** When an attempt's slots lapse if its end is never recorded: its time limit and the lease margin after `now`. */
function holdUntilOf(deps: StepDeps, task: Task, role: AgentRole, now: Date): number {
  const timeoutSeconds =
    task.limits.timeoutSeconds ?? role.timeoutSeconds ?? deps.defaultTimeoutSeconds ?? 1800;
  return now.getTime() + (timeoutSeconds + LEASE_MARGIN_SECONDS) * 1000;
}

/**
 * The role's slot (its `maxConcurrent`), taken before a provider's: undefined when taken (or the
 * role has no limit), else how to wait: parked on the role's queue until one of its attempts ends
 * and hands its slot on.
 */
async function takeRoleSlot(
  deps: StepDeps,
  task: Task,
  role: AgentRole,
  now: Date,
): Promise<Admission | undefined> {
  if (!deps.rolePools) return undefined;
  const key = slotKey(task.id, task.attempts.length + 1);
  const a = await admitRoleSlot(deps.rolePools, role, key, now.getTime(), holdUntilOf(deps, task, role, now));
  if (a.ok) return undefined;
  return {
    waitMs: PARK_TIMEOUT_SECONDS * 1000,
    reason: `no attempt may start now: ${a.reason}`,
    skipped: [a.reason],
    ...(deps.waiting ? { park: [roleQueue(role.name)] } : {}),
  };
}

/**
 * Attempt `attempt` gives its role's slot back (and a slot reserved for the task when it was woken),
 * handed on to the role's next parked task; nothing for a role without a limit.
 */
async function giveRoleSlotBack(
  deps: StepDeps,
  task: Pick<Task, 'id' | 'role'>,
  attempt: number,
  now: Date,
): Promise<void> {
  if (!deps.rolePools || deps.roles[task.role]?.maxConcurrent === undefined) return;
  const key = slotKey(task.id, attempt);
  const t = now.getTime();
  await changeAndHandOff(deps, roleQueue(task.role), now, (s) =>
    unreserve(releaseSlot(s, key, t), [task.id], t),
  );
}

/**
 * The worker state's time limit in the state machine: the longest agent time limit a task may ask
 * for plus time to pull the image, clone and push. The worker enforces each attempt's own limit
 * itself (and reports `timeout`); this only stops a worker that hangs.
 */
export const WORKER_STATE_TIMEOUT_SECONDS = 24 * 3600 + 900;

export async function prepareStep(deps: StepDeps, raw: unknown): Promise<PrepareOutput> {
  const input = PrepareInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  const { health } = deps;
  let waiting: Task | undefined;
  let admitted: { provider: string; task: Task } | undefined;
  const prepared = await prepareNext(deps, {
    taskId: input.taskId,
    leaseOwner: input.executionName,
    now,
    admit: health
      ? async (candidates, task, role, at) => {
          waiting = task;
          const prior = input.state?.prepared;
          const queues = prior?.action === 'park' ? (prior.providers ?? []) : [];
          const parkedOn = queues.filter((q) => roleOfQueue(q) === undefined);
          const roleFull = await takeRoleSlot(deps, task, role, at);
          if (roleFull) {
            // woken by a provider, it waits for its role now: the slot reserved for it goes on
            for (const q of parkedOn)
              await changeAndHandOff(deps, q, at, (s) => unreserve(s, [task.id], at.getTime()));
            return roleFull;
          }
          const a = await admitSlots(deps, health, candidates, task, role, at, parkedOn);
          if ('provider' in a) admitted = { provider: a.provider, task };
          // waiting for a provider holds no slot of the role
          else await giveRoleSlotBack(deps, task, task.attempts.length + 1, at);
          return a;
        }
      : undefined,
  });
  if (!prepared) throw new NotFoundError(`No task ${input.taskId}.`);
  if (prepared.action === 'wait') {
    const waits = (input.state?.prepared?.waits ?? 0) + 1;
    if (prepared.moved && waits === 1)
      await deps.store.appendLogs(input.taskId, [`waiting: ${prepared.reason}`], now);
    if (waits >= CONTINUE_AFTER_WAITS) return { action: 'continue', reason: prepared.reason, waits };
    return prepared.park && waiting
      ? {
          action: 'park',
          providers: prepared.park,
          waiterKey: waiterKey(waiting),
          reason: prepared.reason,
          waits,
        }
      : { action: 'wait', waitSeconds: Math.ceil(prepared.waitMs / 1000), reason: prepared.reason, waits };
  }
  if (prepared.action === 'stop') {
    if (prepared.moved)
      await deps.store.appendLogs(input.taskId, [`task ${prepared.task.status}: ${prepared.reason}`], now);
    await giveBack(deps, admitted?.task ?? prepared.task, admitted?.provider, now);
    return { action: 'stop', reason: prepared.reason, status: prepared.task.status };
  }
  const { plan } = prepared;
  const size = fargateSize(plan.cpu, plan.memoryMiB);
  if (prepared.moved) {
    const routed = prepared.routing ? [`routed to ${plan.provider}: ${prepared.routing.reason}`] : [];
    await deps.store.appendLogs(
      input.taskId,
      [...routed, `attempt ${plan.attempt} on ${plan.provider}`],
      now,
    );
  }
  const startInSeconds = Math.ceil((prepared.delayMs ?? 0) / 1000);
  return {
    action: 'run',
    plan: { ...plan, cpuUnits: size.cpu, memory: size.memory },
    ...(startInSeconds > 0 ? { startInSeconds } : {}),
  };
}

/**
 * The execution stops without running an attempt: a slot it took, or one reserved for it when it
 * was woken, goes to the next parked task.
 */
async function giveBack(deps: StepDeps, task: Task, provider: string | undefined, now: Date): Promise<void> {
  const role = deps.roles[task.role];
  const providers = new Set(role ? providerCandidates(task, role, deps.available) : []);
  if (provider) providers.add(provider);
  const key = slotKey(task.id, task.attempts.length + 1);
  const t = now.getTime();
  for (const p of providers)
    await changeAndHandOff(deps, p, now, (s) =>
      unreserve(p === provider ? releaseSlot(s, key, t) : s, [task.id], t),
    );
  await giveRoleSlotBack(deps, task, task.attempts.length + 1, now);
}

/**
 * The slot states and limits behind a waiter queue: a role's pool (`role:<name>`, core
 * role-slots.ts) or a provider's health; undefined when the step has none.
 */
function slotsOf(
  deps: StepDeps,
  queue: string,
): { store: ProviderStateStore; limits: ProviderLimits } | undefined {
  const role = roleOfQueue(queue);
  if (role !== undefined)
    return deps.rolePools && { store: deps.rolePools, limits: rolePoolLimits(deps.roles[role]) };
  return deps.health && { store: deps.health.store, limits: limitsOf(deps)(queue) };
}

/**
 * Applies `change` to the state of a queue's slots (a provider's, or a role's pool) and hands the
 * slots it frees to the tasks parked there in the same write (`wakeWaiters`); without waiter
 * storage, only the change.
 */
async function changeAndHandOff(
  deps: StepDeps,
  queue: string,
  now: Date,
  change?: (s: ProviderState) => ProviderState,
): Promise<void> {
  const slots = slotsOf(deps, queue);
  if (!slots) return;
  const { store, limits } = slots;
  if (deps.waiting) {
    await wakeWaiters({ health: store, limits: () => limits, ...deps.waiting }, queue, now.getTime(), change);
  } else if (change) {
    await updateProviderState(store, queue, limits, now.getTime(), (s) => ({
      next: change(s),
      result: undefined,
    }));
  }
}

/**
 * Frees attempt `attempt`'s slot on its provider (with its result, unless it never ran or was
 * cancelled) and its role's slot, and hands them on.
 */
async function freeSlot(
  deps: StepDeps,
  before: Task,
  attempt: number,
  now: Date,
  result?: Pick<AttemptOutcomeReport, 'ok' | 'errorClass'>,
): Promise<void> {
  await giveRoleSlotBack(deps, before, attempt, now);
  const provider = before.attempts.find((a) => a.number === attempt)?.provider;
  if (!deps.health || !provider) return;
  const key = slotKey(before.id, attempt);
  const t = now.getTime();
  const breaker = deps.health.breaker;
  // a cancelled attempt says nothing about the provider
  const change =
    result && !before.cancelRequested
      ? (s: ProviderState) => slotResult(s, key, result.ok, result.errorClass, t, breaker)
      : (s: ProviderState) => releaseSlot(s, key, t);
  await changeAndHandOff(deps, provider, now, change);
}

export const ParkInput = PrepareInput.extend({
  /** `$$.Task.Token` of the parked state. */
  taskToken: z.string().min(1),
  providers: z.array(z.string()).min(1),
  waiterKey: z.string().min(1),
});

/**
 * Workflow step "Park" (a `.waitForTaskToken` state): the execution waits, at no cost, on each full
 * provider's waiter list, or on its full role's (`role:<name>`), until a slot frees there (the
 * record step reserves the freed slot for the next parked task in fair order and resumes it). A
 * slot that freed while this step ran is seen by the hand-off after the registration.
 */
export async function parkStep(deps: StepDeps, raw: unknown): Promise<{ parked: number }> {
  const input = ParkInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  if (!deps.waiting) throw new Error('parkStep needs waiter storage (deps.waiting).');
  const waiter: Waiter = {
    key: input.waiterKey,
    taskId: input.taskId,
    tenant: input.tenant,
    executionName: input.executionName,
    taskToken: input.taskToken,
  };
  const expires = new Date(now.getTime() + 2 * PARK_TIMEOUT_SECONDS * 1000);
  for (const p of input.providers) await deps.waiting.waiters.add(p, waiter, expires);
  for (const p of input.providers) await changeAndHandOff(deps, p, now);
  return { parked: input.providers.length };
}

/** The name of the execution a long wait continues in: `<name>-c1`, `<name>-c2`, ... */
export function continuationName(executionName: string): string {
  const m = executionName.match(/^(.*)-c(\d+)$/);
  return m ? `${m[1]}-c${Number(m[2]) + 1}` : `${executionName}-c1`;
}

export type ContinueOutput =
  | { continued: true; executionName: string }
  | { continued: false; reason: string };

/**
 * Workflow step "Continue in a fresh execution": hands the task's lease to the next execution name
 * (a conditional write, so exactly one continuation owns the task) and starts that execution of
 * this state machine with the same input. Repeating the step starts the same name again, which
 * Step Functions ignores.
 */
export async function continueStep(deps: StepDeps, raw: unknown): Promise<ContinueOutput> {
  const input = PrepareInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  if (!deps.launcher) throw new Error('continueStep needs a launcher.');
  const next = continuationName(input.executionName);
  const moved = await mutateTask(deps.store, input.taskId, (t) =>
    t.lease?.owner === input.executionName
      ? { ...t, lease: { ...t.lease, owner: next }, version: t.version + 1, updatedAt: now.toISOString() }
      : undefined,
  );
  if (!moved) throw new NotFoundError(`No task ${input.taskId}.`);
  const task = moved.after ?? moved.before;
  if (task.lease?.owner !== next)
    return { continued: false, reason: 'the task no longer belongs to this execution' };
  await deps.launcher.start(next, { taskId: input.taskId, tenant: input.tenant });
  if (moved.after)
    await deps.store.appendLogs(input.taskId, [`still waiting; workflow continues as ${next}`], now);
  return { continued: true, executionName: next };
}

export const RecordInput = z.object({
  taskId: z.string(),
  tenant: z.string(),
  executionName: z.string(),
  attempt: z.number().int().positive(),
  /** The Catch result of the worker state (Error, Cause) when it failed or timed out. */
  failure: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).nullish(),
});

export type RecordOutput = { next: 'finish'; status: string } | { next: 'retry'; waitSeconds: number };

/** The report the worker stored, or one made from how the worker state failed. */
export function reportFrom(
  stored: unknown,
  failure: z.infer<typeof RecordInput>['failure'],
): AttemptOutcomeReport {
  const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
  if (stored && typeof stored === 'object' && typeof (stored as { ok?: unknown }).ok === 'boolean') {
    const r = stored as AttemptOutcomeReport;
    return { ...r, usage: r.usage ?? usage };
  }
  if (failure?.Error === 'States.Timeout') {
    return { ok: false, errorClass: 'timeout', message: 'the worker ran past its time limit', usage };
  }
  const cause = failure?.Cause ? `: ${failure.Cause.slice(0, 300)}` : '';
  return {
    ok: false,
    errorClass: 'crash',
    message: `the worker ended without a report (${failure?.Error ?? 'no error'})${cause}`,
    usage,
  };
}

/**
 * The worker never ran (no Fargate capacity, RunTask throttled, the image could not be pulled):
 * the core takes the attempt back and schedules an infrastructure retry. No provider result.
 */
async function recordInfrastructureStep(
  deps: StepDeps,
  input: z.infer<typeof RecordInput>,
  now: Date,
): Promise<RecordOutput> {
  const reason = `${input.failure?.Error ?? 'error'}: ${(input.failure?.Cause ?? '').slice(0, 300)}`;
  const result = await recordInfrastructureNext(deps, {
    taskId: input.taskId,
    attempt: input.attempt,
    reason,
    leaseOwner: input.executionName,
    now,
  });
  if (!result) throw new NotFoundError(`No task ${input.taskId}.`);
  const after = result.task;
  if (result.moved) await freeSlot(deps, result.before, input.attempt, now);
  if (result.moved) {
    const line =
      after.status === 'retrying'
        ? `the worker for attempt ${input.attempt} could not be started (${reason}); infrastructure retry in ${result.next.kind === 'retry' ? result.next.waitSeconds : 0}s, no attempt used`
        : `the worker could not be started; task ${after.status}: ${after.error?.message ?? ''}`;
    await deps.store.appendLogs(input.taskId, [line], now);
    if (result.next.kind !== 'retry' && deps.onFinished) await deps.onFinished(after);
  }
  return result.next.kind === 'retry'
    ? { next: 'retry', waitSeconds: result.next.waitSeconds }
    : { next: 'finish', status: after.status };
}

export async function recordStep(deps: StepDeps, raw: unknown): Promise<RecordOutput> {
  const input = RecordInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  const stored = await deps.store.getAttemptReport(input.taskId, input.attempt);
  if (stored === undefined && classifyWorkerFailure(input.failure) === 'infrastructure') {
    return recordInfrastructureStep(deps, input, now);
  }
  const report = reportFrom(stored, input.failure);
  // the provider hears of the result through its slot (freeSlot), not through recordNext
  const result = await recordNext(
    { ...deps, health: undefined },
    {
      taskId: input.taskId,
      attempt: input.attempt,
      report,
      leaseOwner: input.executionName,
      now,
    },
  );
  if (!result) throw new NotFoundError(`No task ${input.taskId}.`);
  const after = result.task;
  if (result.moved) await freeSlot(deps, result.before, input.attempt, now, report);
  if (result.moved) {
    const why =
      after.status === 'retrying'
        ? ` (next: ${after.provider})`
        : after.error
          ? `: ${after.error.message}`
          : '';
    await deps.store.appendLogs(
      input.taskId,
      [`attempt ${input.attempt} ended; task ${after.status}${why}`],
      now,
    );
  }
  if (result.moved && result.next.kind !== 'retry' && deps.onFinished) await deps.onFinished(after);
  return result.next.kind === 'retry'
    ? { next: 'retry', waitSeconds: result.next.waitSeconds }
    : { next: 'finish', status: after.status };
}
