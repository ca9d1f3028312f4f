import { epicChildren, epicStarted } from './epics.js';
import { ConflictError } from './errors.js';
import type { InfrastructureRetryPolicy } from './infrastructure.js';
import { namedProvider, type RetryPolicy } from './lifecycle.js';
import type { TaskStore } from './ports.js';
import {
  admitProvider,
  type BreakerMode,
  type BreakerPolicy,
  breakerMode,
  DEFAULT_BREAKER,
  type ProviderStateStore,
  type RatePolicy,
  recordProviderResult,
} from './provider-health.js';
import type { AgentRole } from './roles.js';
import {
  type AttemptRouting,
  admittedRouting,
  DEFAULT_ROUTING_POLICY,
  type Route,
  type RouteFiguresSource,
  type RoutingPolicy,
  route,
  routingCandidates,
} from './routing.js';
import { AUTO_PROVIDER, type Task } from './schemas.js';
import {
  type AttemptOutcomeReport,
  type AttemptPlan,
  deferAttempt,
  type PrepareOutcome,
  prepareAttempt,
  providerCandidates,
  type RecordOutcome,
  reapExpired,
  recordAttempt,
  recordInfrastructureFailure,
  releaseBlocked,
  renewLease,
} from './workflow.js';

/**
 * The workflow steps applied through the store port: one implementation shared by both engines,
 * the local executor (over SQLite) and the Step Functions workflow's Lambda steps (over DynamoDB).
 * Each reads the task, applies the pure step of workflow.ts with a conditional write on its
 * version (reading again when another writer won), and tells provider health what it learnt.
 * What an engine adds around them is its own: how it waits, how it runs the worker, its logs.
 */

/** What the steps need of a task store: read by id, and conditional writes on the version. */
export interface WorkflowStore {
  getById(id: string): Promise<Task | undefined>;
  put(task: Task, expectedVersion: number): Promise<void>;
}

/**
 * Applies `fn` to the latest stored task with a conditional write on its version, reading again
 * when another writer won. `fn` returns undefined to leave the task as it is.
 */
export async function mutateTask(
  store: WorkflowStore,
  id: string,
  fn: (task: Task) => Task | undefined,
  attempts = 10,
): Promise<{ before: Task; after?: Task } | undefined> {
  let current = await store.getById(id);
  for (let i = 0; i < attempts && current; i++) {
    const next = fn(current);
    if (!next || next === current) return { before: current };
    try {
      await store.put(next, current.version);
      return { before: current, after: next };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      current = await store.getById(id);
    }
  }
  if (!current) return undefined;
  throw new ConflictError(`Task ${id} kept changing; giving up after ${attempts} tries.`);
}

/** Per-provider circuit breakers and token buckets, shared by every executor through the store. */
export interface ProviderHealth {
  store: ProviderStateStore;
  breaker?: BreakerPolicy;
  rate?: RatePolicy;
}

/** What every step reads from its engine's configuration. */
export interface EngineDeps {
  store: WorkflowStore;
  roles: Record<string, AgentRole>;
  /** Installed, with credentials: a provider worth sending work to. */
  available: (provider: string) => boolean;
  /** None: every provider admits. */
  health?: ProviderHealth;
  policy?: RetryPolicy;
  /** Jitter source for retry delays, and for routing's exploration draws unless it has its own (tests fix it). */
  random?: () => number;
  defaultTimeoutSeconds?: number;
  /** Backoff for workers the infrastructure could not start. @default DEFAULT_INFRASTRUCTURE_POLICY */
  infrastructure?: InfrastructureRetryPolicy;
  /** Routing of tasks with `provider: "auto"`; none: they follow the role's order, as if without figures. */
  routing?: RoutingDeps;
}

/** What routing reads: the recorded outcomes per tenant and role, its policy, its random source. */
export interface RoutingDeps {
  figures: RouteFiguresSource;
  /** @default DEFAULT_ROUTING_POLICY */
  policy?: RoutingPolicy;
  /** Exploration draws (tests seed it). @default the engine's `random`, else Math.random */
  random?: () => number;
}

/**
 * The route of a `provider: "auto"` task's next attempt: among the role's available providers
 * (less those that failed it this run for a reason of their own), scored on the tenant's recorded
 * outcomes for the role and on the providers' breakers (core routing.ts).
 */
export async function routeAttempt(deps: EngineDeps, task: Task, role: AgentRole, now: Date): Promise<Route> {
  const available = role.providers.filter(deps.available);
  const thisRun = task.attempts.slice(task.retryFrom ?? 0);
  const candidates = routingCandidates(
    available.length > 0 ? available : role.providers.slice(0, 1),
    thisRun,
  );
  const policy = deps.routing?.policy ?? DEFAULT_ROUTING_POLICY;
  const figures = deps.routing ? await deps.routing.figures(task.tenant, task.role, now) : [];
  const breakers: Record<string, BreakerMode> = {};
  if (deps.health) {
    const { store, breaker } = deps.health;
    const states = await Promise.all(candidates.map((p) => store.getProviderState(p)));
    for (const s of states) {
      if (s) breakers[s.provider] = breakerMode(s, now.getTime(), breaker ?? DEFAULT_BREAKER);
    }
  }
  const routed = route({
    candidates,
    figures,
    breakers,
    policy,
    // the engine's one random source unless routing has its own
    random: deps.routing?.random ?? deps.random ?? Math.random,
  });
  const left = available.filter((p) => !candidates.includes(p));
  if (left.length === 0) return routed;
  const note = `; left out after failing this task: ${left.join(', ')}`;
  return { ...routed, routing: { ...routed.routing, reason: `${routed.routing.reason}${note}` } };
}

/**
 * Places an engine holds on providers besides provider health (the local executor's
 * `maxConcurrent`): `full` says why a provider takes no attempt now; `take` holds a place on the
 * admitted one, called with no await after the last `full`, so two admissions cannot both take it.
 */
export interface ProviderSlots {
  full(provider: string): string | undefined;
  take(provider: string): void;
}

export type Admission =
  /** `delayMs`: the provider's token bucket gives the attempt its turn that much later. */
  | { provider: string; skipped: string[]; delayMs?: number }
  /** `park`: the providers are full; wait until a slot frees on one of these (no retry time). */
  | { waitMs: number; reason: string; skipped: string[]; park?: string[] };

/**
 * The first of `candidates` that admits an attempt now: not full, circuit breaker not open, a token
 * in its bucket. Otherwise how long to wait until one may (at least `minWaitMs`).
 */
export async function admitOne(input: {
  candidates: readonly string[];
  health?: ProviderHealth;
  slots?: ProviderSlots;
  now: Date;
  minWaitMs?: number;
}): Promise<Admission> {
  const { health, slots } = input;
  const skipped: string[] = [];
  let waitMs = Number.POSITIVE_INFINITY;
  const full = (p: string) => {
    const why = slots?.full(p);
    if (why) {
      skipped.push(`${p} (${why})`);
      waitMs = Math.min(waitMs, 1000);
    }
    return why !== undefined;
  };
  for (const p of input.candidates) {
    if (full(p)) continue;
    const a = health
      ? await admitProvider(health.store, p, input.now.getTime(), health.breaker, health.rate)
      : ({ ok: true } as const);
    if (a.ok) {
      // checked again after the await: another admission may have taken the last place meanwhile
      if (full(p)) continue;
      slots?.take(p);
      return { provider: p, skipped };
    }
    const why = a.reason === 'breaker_open' ? 'circuit breaker open' : 'rate limit';
    skipped.push(`${p} (${why}, ${Math.ceil(a.retryAfterMs / 1000)} s)`);
    waitMs = Math.min(waitMs, a.retryAfterMs);
  }
  return {
    waitMs: Math.max(input.minWaitMs ?? 1000, waitMs),
    reason: `no provider admits work now: ${skipped.join(', ')}`,
    skipped,
  };
}

/**
 * The provider a task that names one (not pinned) keeps to: the named one, or the one a failover
 * moved it to, while it is available and its breaker is not open. A busy provider (slots, rate) is
 * waited for; failures move the task (the lifecycle's failover, an open breaker). undefined: the
 * task takes the role's order.
 */
async function preferenceHold(deps: EngineDeps, task: Task, now: Date): Promise<string | undefined> {
  const named = namedProvider(task);
  if (!named || task.pin) return undefined;
  const held = task.provider && task.attempts.length > 0 ? task.provider : named;
  if (!deps.available(held)) return undefined;
  const state = deps.health ? await deps.health.store.getProviderState(held) : undefined;
  const open = state && breakerMode(state, now.getTime(), deps.health?.breaker ?? DEFAULT_BREAKER) === 'open';
  return open ? undefined : held;
}

export type PrepareResult =
  | {
      action: 'run';
      task: Task;
      plan: AttemptPlan;
      moved: boolean;
      skipped: string[];
      delayMs?: number;
      /** How routing chose the provider (`provider: "auto"`). */
      routing?: AttemptRouting;
    }
  | { action: 'stop'; task: Task; reason: string; moved: boolean }
  /** No provider admits work now: the task waits as `retrying` (moved: this step made it wait). */
  | { action: 'wait'; waitMs: number; reason: string; moved: boolean; park?: string[] };

/**
 * The prepare step: the next attempt of task `taskId`, which `leaseOwner` holds. A new attempt's
 * provider is admitted by provider health (and the engine's slots) among the core's candidates;
 * when none admits, the task waits (core `deferAttempt`); else the core `prepareAttempt` starts it
 * (or stops: cancelled, ended, another owner's, an unknown role). Idempotent like the core step.
 */
export async function prepareNext(
  deps: EngineDeps,
  input: {
    taskId: string;
    leaseOwner: string;
    now: Date;
    /** See prepareAttempt: an engine that renews the lease keeps it short. */
    leaseMs?: number;
    executor?: string;
    slots?: ProviderSlots;
    minWaitMs?: number;
    /** An engine's own admission (AWS: concurrency slots in the store) in place of `admitOne`. */
    admit?: (candidates: string[], task: Task, role: AgentRole, now: Date) => Promise<Admission>;
  },
): Promise<PrepareResult | undefined> {
  const { now, leaseOwner } = input;
  const current = await deps.store.getById(input.taskId);
  if (!current) return undefined;
  const role = deps.roles[current.role];
  const step = (task: Task, provider?: string, routing?: AttemptRouting): PrepareOutcome =>
    prepareAttempt({
      task,
      role: deps.roles[task.role],
      available: deps.available,
      now,
      leaseOwner,
      defaultTimeoutSeconds: deps.defaultTimeoutSeconds,
      provider,
      leaseMs: input.leaseMs,
      executor: input.executor,
      routing,
    });
  const preview = step(current);
  let admission: Admission | undefined;
  let routed: Route | undefined;
  if (role && preview.action === 'run' && preview.changed) {
    if (current.requestedProvider === AUTO_PROVIDER) routed = await routeAttempt(deps, current, role, now);
    const held = routed ? undefined : await preferenceHold(deps, current, now);
    const candidates = routed?.order ?? (held ? [held] : providerCandidates(current, role, deps.available));
    admission = input.admit
      ? await input.admit(candidates, current, role, now)
      : await admitOne({
          candidates,
          health: deps.health,
          slots: input.slots,
          now,
          minWaitMs: input.minWaitMs,
        });
    if ('waitMs' in admission) {
      const notBefore = now.getTime() + admission.waitMs;
      const deferred = await mutateTask(deps.store, input.taskId, (t) =>
        t.lease?.owner === leaseOwner ? deferAttempt(t, notBefore, now) : undefined,
      );
      return {
        action: 'wait',
        waitMs: admission.waitMs,
        reason: admission.reason,
        moved: !!deferred?.after,
        ...(admission.park ? { park: admission.park } : {}),
      };
    }
  }
  const provider = admission && 'provider' in admission ? admission.provider : undefined;
  const routing =
    routed && admission && 'provider' in admission
      ? admittedRouting(routed.routing, admission.provider, admission.skipped)
      : undefined;
  let outcome: PrepareOutcome | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    outcome = step(t, provider, routing);
    return outcome.changed ? outcome.task : undefined;
  });
  if (!moved || !outcome) return undefined;
  if (outcome.action === 'stop') {
    return { action: 'stop', task: outcome.task, reason: outcome.reason, moved: !!moved.after };
  }
  const skipped = admission && 'provider' in admission ? admission.skipped : [];
  const delayMs = admission && 'provider' in admission ? admission.delayMs : undefined;
  return {
    action: 'run',
    task: outcome.task,
    plan: outcome.plan,
    moved: !!moved.after,
    skipped,
    ...(delayMs ? { delayMs } : {}),
    ...(routing && moved.after ? { routing } : {}),
  };
}

export interface RecordResult extends RecordOutcome {
  /** The task as it was before this step. */
  before: Task;
  /** This step moved the task (false: a retried step, or the task is no longer this owner's). */
  moved: boolean;
}

/**
 * The record step: how attempt `attempt` ended, through the core `recordAttempt` (succeed, cancel,
 * retry or fail over after a pause, fail). Provider health hears of the result, unless the attempt
 * was cancelled (a stopped agent says nothing about its provider). undefined: no such task.
 */
export async function recordNext(
  deps: EngineDeps,
  input: { taskId: string; attempt: number; report: AttemptOutcomeReport; leaseOwner: string; now: Date },
): Promise<RecordResult | undefined> {
  const { report, now } = input;
  let result: RecordOutcome | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    const role = deps.roles[t.role];
    result = role
      ? recordAttempt({
          task: t,
          role,
          attempt: input.attempt,
          report,
          available: deps.available,
          now,
          leaseOwner: input.leaseOwner,
          roleNames: Object.keys(deps.roles),
          policy: deps.policy,
          random: deps.random,
        })
      : undefined;
    return result?.changed ? result.task : undefined;
  });
  if (!moved) return undefined;
  const { before } = moved;
  const outcome = result ?? { task: before, changed: false, next: { kind: 'finish' as const } };
  const provider = before.attempts.find((a) => a.number === input.attempt)?.provider;
  if (moved.after && deps.health && provider && !before.cancelRequested) {
    await recordProviderResult(
      deps.health.store,
      provider,
      report.ok,
      report.errorClass,
      now.getTime(),
      deps.health.breaker,
      deps.health.rate,
    );
  }
  return { ...outcome, before, moved: !!moved.after };
}

/**
 * The worker for attempt `attempt` never ran (no capacity, a start refused): the core
 * `recordInfrastructureFailure` takes the attempt back and backs off. No provider result.
 */
export async function recordInfrastructureNext(
  deps: EngineDeps,
  input: { taskId: string; attempt: number; reason: string; leaseOwner: string; now: Date },
): Promise<RecordResult | undefined> {
  let result: RecordOutcome | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    result = recordInfrastructureFailure({
      task: t,
      attempt: input.attempt,
      reason: input.reason,
      now: input.now,
      leaseOwner: input.leaseOwner,
      policy: deps.infrastructure,
    });
    return result.changed ? result.task : undefined;
  });
  if (!moved || !result) return undefined;
  return { ...result, before: moved.before, moved: !!moved.after };
}

/**
 * The reap step for one task: core `reapExpired` (re-queued, failed or cancelled when its lease
 * expired, or at once when `lostOwner` still holds it). The task after, when this step moved it.
 */
export async function reapTask(
  store: WorkflowStore,
  roles: Record<string, AgentRole>,
  taskId: string,
  now: Date,
  lostOwner?: { owner: string; description: string },
): Promise<Task | undefined> {
  const moved = await mutateTask(store, taskId, (t) => reapExpired(t, roles[t.role], now, lostOwner));
  return moved?.after;
}

/**
 * The release step for one blocked task: core `releaseBlocked` over its dependencies as stored
 * (queued when all succeeded, failed when one failed, was cancelled or is missing). The task
 * after, when this step moved it.
 */
export async function releaseTask(
  store: WorkflowStore & { get(tenant: string, id: string): Promise<Task | undefined> },
  blocked: Task,
  now: Date,
): Promise<Task | undefined> {
  // a running epic waits for its sub-tasks, any other task for its dependencies
  const ids = blocked.epic?.stage === 'running' ? (blocked.epic.children ?? []) : blocked.dependsOn;
  const deps = await Promise.all(ids.map((d) => store.get(blocked.tenant, d)));
  const waited = await Promise.all((blocked.waitsFor ?? []).map((d) => store.get(blocked.tenant, d)));
  // still waiting as listed: no second read of the task (most of the blocked, most of the time)
  if (!releaseBlocked(blocked, deps, now, waited)) return undefined;
  const moved = await mutateTask(store, blocked.id, (t) => releaseBlocked(t, deps, now, waited));
  return moved?.after;
}

/**
 * The release step over all blocked tasks: each is released (core `releaseBlocked`), and while
 * some failed, those still blocked are looked at again, so that a failure runs down a chain of
 * dependents to its end in one pass, whatever the order of `blocked`. The tasks it moved.
 */
export async function releaseAll(store: ReleaseStore, blocked: readonly Task[], now: Date): Promise<Task[]> {
  const moved: Task[] = [];
  let pending = blocked;
  while (pending.length > 0) {
    const still: Task[] = [];
    let failed = false;
    for (const task of pending) {
      if (task.epic?.stage === 'planned') {
        moved.push(...(await startEpic(store, task, now)));
        continue;
      }
      const after = await releaseTask(store, task, now);
      if (!after) still.push(task);
      else {
        moved.push(after);
        failed ||= after.status === 'failed';
      }
    }
    // only a failure can release more (a dependent of a queued task still waits)
    if (!failed) break;
    pending = still;
  }
  return moved;
}

/** What the release step needs of a store: reads, conditional writes, and batches (an epic's sub-tasks). */
export type ReleaseStore = WorkflowStore & {
  get(tenant: string, id: string): Promise<Task | undefined>;
  createBatch: TaskStore['createBatch'];
};

/** How long an epic's sub-tasks are found again under its key: a repeated start stores none twice. */
const EPIC_KEY_TTL_SECONDS = 30 * 86_400;

/**
 * Starts an epic whose plan is ready (stage `planned`): stores its sub-tasks as one batch under an
 * idempotency key of the epic (a second start finds the same ones), then the epic waits for them.
 * The sub-tasks stored (the queued ones to announce), none when another start was first.
 */
export async function startEpic(store: ReleaseStore, parent: Task, now: Date): Promise<Task[]> {
  if (parent.status !== 'blocked' || parent.epic?.stage !== 'planned') return [];
  let tasks: Task[];
  try {
    ({ tasks } = await store.createBatch(epicChildren(parent, now), {
      key: `${parent.tenant}#epic#${parent.id}`,
      bodyHash: parent.id,
      ttlSeconds: EPIC_KEY_TTL_SECONDS,
    }));
  } catch (err) {
    if (err instanceof ConflictError) return []; // another start is storing them: it goes on
    throw err;
  }
  const moved = await mutateTask(store, parent.id, (t) => epicStarted(t, tasks, now));
  return moved?.after ? tasks : [];
}

export interface LeaseHeartbeatOptions {
  store: WorkflowStore;
  taskId: string;
  attempt: number;
  /** How often the lease is renewed. */
  everyMs: number;
  /** How far ahead of each renewal the lease runs. */
  leaseMs: number;
  /** Where this worker runs (its ECS task ARN), recorded on the attempt by the first beat. */
  workerRef?: () => Promise<string | undefined>;
  /** The task no longer runs this attempt (reaped, cancelled, recorded): stop working on it. */
  onLost: () => void;
  /** Each renewal, with the task as stored (a cancel requested meanwhile shows on it). */
  onRenewed?: (task: Task) => void;
  /** A renewal failed (throttling, network); the next one tries again. */
  onError?: (err: unknown) => void;
  now?: () => Date;
}

/**
 * Renews the lease of a running attempt while its worker works on it (agent runs, quality gates,
 * repair and review rounds alike), so an attempt that outlives its first lease is never taken for
 * lost by the reaper and started a second time. Renewals are conditional writes on the task's
 * version through the core `renewLease`; one at a time, never overlapping.
 */
export function startLeaseHeartbeat(opts: LeaseHeartbeatOptions): { stop: () => Promise<void> } {
  const now = opts.now ?? (() => new Date());
  let stopped = false;
  let ref: string | undefined;
  const beat = async () => {
    try {
      const moved = await mutateTask(opts.store, opts.taskId, (t) =>
        renewLease(t, opts.attempt, now(), opts.leaseMs, ref),
      );
      ref = undefined;
      if (!stopped && !moved?.after) {
        stopped = true;
        opts.onLost();
      } else if (moved?.after) opts.onRenewed?.(moved.after);
    } catch (err) {
      opts.onError?.(err);
    }
  };
  // the first beat at once: it records where the worker runs, so that cancel can stop it
  let running = (async () => {
    ref = await opts.workerRef?.().catch(() => undefined);
    await beat();
  })();
  const timer = setInterval(() => {
    if (!stopped) running = running.then(beat);
  }, opts.everyMs);
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
