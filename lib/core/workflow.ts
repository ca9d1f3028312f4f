import { afterPlanning, epicEnded, isPlanning } from './epics.js';
import type { ProviderErrorClass } from './errors.js';
import { waitOver } from './file-claims.js';
import {
  DEFAULT_INFRASTRUCTURE_POLICY,
  type InfrastructureRetryPolicy,
  infrastructureDelayMs,
} from './infrastructure.js';
import {
  attemptsThisRun,
  chooseProvider,
  DEFAULT_RETRY_POLICY,
  decideAfterAttempt,
  namedProvider,
  type RetryPolicy,
  transition,
} from './lifecycle.js';
import type { AgentRole } from './roles.js';
import type { AttemptRouting } from './routing.js';
import { type Attempt, isTerminal, type Task, type Usage } from './schemas.js';

/**
 * The workflow steps, as pure functions over a task: both engines (the local executor and the
 * Step Functions workflow) run them, through workflow-engine.ts. Each returns the next task (to be
 * stored with a conditional write on the previous version) and what the workflow does next. Each
 * is idempotent: given a task it has already moved, it returns the task unchanged and the same
 * next step, so a retried step never moves a task twice.
 */

/** What one attempt needs: which provider, and the limits the worker runs under. */
export interface AttemptPlan {
  taskId: string;
  tenant: string;
  attempt: number;
  provider: string;
  cpu: number;
  memoryMiB: number;
  timeoutSeconds: number;
}

/** What the worker reports about one attempt (the worker's AttemptReport has this shape). */
export interface AttemptOutcomeReport {
  ok: boolean;
  errorClass?: ProviderErrorClass;
  message?: string;
  summary?: string;
  sessionId?: string;
  usage: Usage;
  branch?: string;
  commit?: string;
  /** A failure no retry can mend; the task fails with this code. */
  fatalCode?: string;
  /** The pull request the worker opened or updated. */
  pullRequest?: { url: string };
  /** Quality gate results, as they ended. */
  gates?: Task['gates'];
  /** The review agent's verdict, when .autodev.yml asks for one. */
  review?: Task['review'];
  /** The model calls of the attempt's gateway session (its ledger), when it had one. */
  calls?: Attempt['calls'];
  /** The provider said when to come back (a rate limit's reset): no retry on it sooner. */
  retryAfterMs?: number;
  /** An epic's planning attempt: the plan as the agent gave it (checked by the record step). */
  plan?: unknown;
}

export type PrepareOutcome =
  | { action: 'run'; task: Task; changed: boolean; plan: AttemptPlan }
  | { action: 'stop'; task: Task; changed: boolean; reason: string };

export type NextStep = { kind: 'finish' } | { kind: 'retry'; waitSeconds: number };

export interface RecordOutcome {
  task: Task;
  changed: boolean;
  next: NextStep;
  /** Why the task waits for another attempt (a retry or a failover), for the task's log. */
  reason?: string;
}

/** Extra time a lease allows beyond the attempt's own time limit (start-up, push, record). */
export const LEASE_MARGIN_SECONDS = 15 * 60;

function planFor(task: Task, role: AgentRole, attempt: Attempt, defaultTimeoutSeconds: number): AttemptPlan {
  return {
    taskId: task.id,
    tenant: task.tenant,
    attempt: attempt.number,
    provider: attempt.provider,
    cpu: task.limits.cpu ?? role.resources.cpu,
    memoryMiB: task.limits.memoryMiB ?? role.resources.memoryMiB,
    timeoutSeconds: task.limits.timeoutSeconds ?? role.timeoutSeconds ?? defaultTimeoutSeconds,
  };
}

/**
 * Starts the next attempt: picks the provider (the one retries chose, else by the role's order),
 * adds a running attempt and takes a lease for its duration. Stops on cancelled or ended tasks.
 */
export function prepareAttempt(input: {
  task: Task;
  role: AgentRole | undefined;
  available: (provider: string) => boolean;
  now: Date;
  leaseOwner: string;
  defaultTimeoutSeconds?: number;
  /** The provider admitted for a new attempt (provider health); by default the first candidate. */
  provider?: string;
  /**
   * How long the lease runs from now. An executor that renews it while the attempt runs (the local
   * one) keeps it short; by default it covers the attempt's time limit plus LEASE_MARGIN_SECONDS.
   */
  leaseMs?: number;
  /** Which executor runs the attempt, recorded on it. */
  executor?: string;
  /** How routing chose `provider` (tasks with `provider: "auto"`), recorded on the attempt. */
  routing?: AttemptRouting;
}): PrepareOutcome {
  const { task, role, now } = input;
  const defaultTimeout = input.defaultTimeoutSeconds ?? 1800;
  if (isTerminal(task.status)) {
    return { action: 'stop', task, changed: false, reason: `the task already ended ${task.status}` };
  }
  if (task.status === 'blocked') {
    return { action: 'stop', task, changed: false, reason: 'the task waits for its dependencies' };
  }
  if (task.lease && task.lease.owner !== input.leaseOwner) {
    // fenced: the task was re-queued and admitted again; another execution owns it now
    return { action: 'stop', task, changed: false, reason: `the task belongs to ${task.lease.owner}` };
  }
  const last = task.attempts[task.attempts.length - 1];
  const attemptRunning = task.status === 'running' && last?.outcome === 'running';
  if (task.cancelRequested) {
    const attempts = task.attempts.map((a) =>
      a.outcome === 'running' ? { ...a, outcome: 'cancelled' as const, endedAt: now.toISOString() } : a,
    );
    const cancelled = transition(
      { ...task, attempts, lease: undefined, notBefore: undefined },
      'cancelled',
      { error: { code: 'cancelled', message: 'Cancelled before the attempt started.' } },
      now,
    );
    return { action: 'stop', task: cancelled, changed: true, reason: 'cancel requested' };
  }
  if (!role) {
    // queued cannot fail directly: it passes through running within the same write
    const from = task.status === 'queued' ? transition(task, 'running', {}, now) : task;
    const failed = transition(
      { ...from, lease: undefined, notBefore: undefined },
      'failed',
      { error: { code: 'unknown_role', message: `The role "${task.role}" is no longer configured.` } },
      now,
    );
    return {
      action: 'stop',
      task: { ...failed, version: task.version + 1 },
      changed: true,
      reason: 'unknown role',
    };
  }
  if (attemptRunning && last) {
    return { action: 'run', task, changed: false, plan: planFor(task, role, last, defaultTimeout) };
  }
  const provider = input.provider ?? providerCandidates(task, role, input.available)[0] ?? 'claude';
  const attempt: Attempt = {
    number: task.attempts.length + 1,
    provider,
    startedAt: now.toISOString(),
    outcome: 'running',
    ...(input.executor ? { executor: input.executor } : {}),
    ...(input.routing ? { routing: input.routing } : {}),
  };
  const plan = planFor(task, role, attempt, defaultTimeout);
  const patch: Partial<Task> = {
    provider,
    attempts: [...task.attempts, attempt],
    notBefore: undefined,
    lease: {
      owner: input.leaseOwner,
      expiresAt: now.getTime() + (input.leaseMs ?? (plan.timeoutSeconds + LEASE_MARGIN_SECONDS) * 1000),
    },
  };
  const next =
    task.status === 'running'
      ? { ...task, ...patch, version: task.version + 1, updatedAt: now.toISOString() }
      : transition(task, 'running', patch, now);
  return { action: 'run', task: next, changed: true, plan };
}

/**
 * The providers the next attempt may use, in order: the one a retry chose, then the one the task
 * names (a preference, when available), then the role's available providers. A task pinned to
 * the provider it names has that one only. Provider health admits the first that it can; without
 * health checks the first is used. (Tasks with `provider: "auto"` are routed instead: routing.ts.)
 */
export function providerCandidates(
  task: Pick<Task, 'provider' | 'attempts' | 'requestedProvider' | 'pin'>,
  role: AgentRole,
  available: (provider: string) => boolean,
): string[] {
  const named = namedProvider(task);
  if (named && task.pin) return [named];
  const preferred = task.provider && task.attempts.length > 0 ? task.provider : undefined;
  const first = chooseProvider(task, role, available);
  const list = [
    ...new Set([
      preferred,
      first && available(first) ? first : undefined,
      ...role.providers.filter(available),
    ]),
  ].filter((p): p is string => p !== undefined);
  return list.length > 0 ? list : [named ?? role.providers[0] ?? 'claude'];
}

/**
 * No provider admits work now (circuit breakers open, rate limits): the task waits as `retrying`
 * until `notBefore`, keeping its lease so the same executor picks it up again.
 */
export function deferAttempt(task: Task, notBefore: number, now: Date): Task | undefined {
  const lease = task.lease && { ...task.lease, expiresAt: notBefore + LEASE_MARGIN_SECONDS * 1000 };
  if (task.status === 'retrying') {
    return { ...task, notBefore, lease, version: task.version + 1, updatedAt: now.toISOString() };
  }
  if (task.status !== 'running' || task.attempts.some((a) => a.outcome === 'running')) return undefined;
  return transition(task, 'retrying', { notBefore, lease }, now);
}

function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cachedInputTokens: (a.cachedInputTokens ?? 0) + (b.cachedInputTokens ?? 0),
    costUsd: Math.round((a.costUsd + b.costUsd) * 1e6) / 1e6,
  };
}

function nextOf(task: Task, now: Date): NextStep {
  return task.status === 'retrying'
    ? { kind: 'retry', waitSeconds: Math.max(0, Math.ceil(((task.notBefore ?? 0) - now.getTime()) / 1000)) }
    : { kind: 'finish' };
}

/**
 * Records how attempt `attempt` ended and applies the core decision (`decideAfterAttempt`):
 * succeed, cancel, retry after a pause (same provider or fail over), or fail.
 */
export function recordAttempt(input: {
  task: Task;
  role: AgentRole;
  attempt: number;
  report: AttemptOutcomeReport;
  available: (provider: string) => boolean;
  now: Date;
  /** The executor recording; a task leased to another one is left alone. */
  leaseOwner?: string;
  /** The agent roles configured, to check an epic's plan against; undefined: not checked. */
  roleNames?: readonly string[];
  policy?: RetryPolicy;
  random?: () => number;
}): RecordOutcome {
  const { task, role, report, now } = input;
  if (input.leaseOwner !== undefined && task.lease?.owner !== input.leaseOwner) {
    return { task, changed: false, next: { kind: 'finish' } };
  }
  const current = task.attempts.find((a) => a.number === input.attempt);
  if (task.status !== 'running' || !current || current.outcome !== 'running') {
    return { task, changed: false, next: nextOf(task, now) };
  }
  const ended: Attempt = {
    ...current,
    endedAt: now.toISOString(),
    outcome: report.ok ? 'succeeded' : 'failed',
    errorClass: report.ok ? undefined : report.errorClass,
    message: report.message,
    usage: report.usage,
    sessionId: report.sessionId,
    ...(report.calls ? { calls: report.calls } : {}),
  };
  const attempts = task.attempts.map((a) => (a.number === current.number ? ended : a));
  const base: Task = {
    ...task,
    attempts,
    usage: addUsage(task.usage, report.usage),
    lease: undefined,
    // the worker ran: infrastructure failures before it no longer count as in a row
    infrastructureRetries: undefined,
  };
  const decision = decideAfterAttempt({
    task: base,
    role,
    result: report,
    available: input.available,
    policy: input.policy ?? DEFAULT_RETRY_POLICY,
    random: input.random,
  });
  const durationMs = now.getTime() - Date.parse(task.createdAt);
  let next: Task;
  switch (decision.kind) {
    case 'succeed':
      if (isPlanning(base)) {
        next = afterPlanning(base, report.plan, input.roleNames, now);
        break;
      }
      next = transition(
        base,
        'succeeded',
        {
          summary: report.summary,
          branch: report.branch,
          commit: report.commit,
          // a pull request an earlier attempt opened stays the task's when this one names none
          pullRequest: report.pullRequest ?? task.pullRequest,
          gates: report.gates,
          review: report.review,
          durationMs,
          error: undefined,
        },
        now,
      );
      break;
    case 'cancel':
      next = transition(
        {
          ...base,
          attempts: attempts.map((a) =>
            a.number === current.number ? { ...ended, outcome: 'cancelled' as const } : a,
          ),
        },
        'cancelled',
        {
          durationMs,
          error: { code: 'cancelled', message: 'Cancelled while running; the agent was stopped.' },
        },
        now,
      );
      break;
    case 'retry': {
      const notBefore = now.getTime() + decision.delayMs;
      next = transition(
        base,
        'retrying',
        {
          provider: decision.provider,
          notBefore,
          // the executor keeps the task between attempts (the lease marks whose it is)
          lease: task.lease && {
            owner: task.lease.owner,
            expiresAt: notBefore + LEASE_MARGIN_SECONDS * 1000,
          },
        },
        now,
      );
      break;
    }
    case 'fail':
      next = transition(
        base,
        'failed',
        {
          durationMs,
          gates: report.gates ?? task.gates,
          error: { code: decision.code, message: decision.message },
        },
        now,
      );
      break;
  }
  const reason = decision.kind === 'retry' ? decision.reason : undefined;
  return { task: next, changed: true, next: nextOf(next, now), reason };
}

/**
 * The executor stops (a shutdown) before attempt `attempt` ended: the attempt is abandoned, what it
 * used is kept, and the task is queued again for the next executor. undefined when the task is no
 * longer this executor's, or a cancel was requested (the attempt is then recorded as cancelled).
 */
export function abandonAttempt(input: {
  task: Task;
  attempt: number;
  usage: Usage;
  calls?: Attempt['calls'];
  leaseOwner: string;
  now: Date;
  message: string;
}): Task | undefined {
  const { task, now } = input;
  const current = task.attempts.find((a) => a.number === input.attempt);
  if (task.status !== 'running' || task.lease?.owner !== input.leaseOwner || task.cancelRequested) {
    return undefined;
  }
  if (current?.outcome !== 'running') return undefined;
  const abandoned: Attempt = {
    ...current,
    endedAt: now.toISOString(),
    outcome: 'abandoned',
    message: input.message,
    usage: input.usage,
    ...(input.calls ? { calls: input.calls } : {}),
  };
  return transition(
    {
      ...task,
      attempts: task.attempts.map((a) => (a === current ? abandoned : a)),
      usage: addUsage(task.usage, input.usage),
      lease: undefined,
    },
    'queued',
    {},
    now,
  );
}

/**
 * The infrastructure never ran attempt `attempt` (no capacity, a throttled start, an image it could
 * not pull): the attempt is taken back, as if it had not begun, and the task waits as `retrying`
 * for the infrastructure backoff, keeping its lease and provider. It uses no attempt and says
 * nothing about the provider. A cancel requested meanwhile cancels the task; after
 * `policy.maxRetries` such failures in a row the task fails. Same idempotence rules as recordAttempt.
 */
export function recordInfrastructureFailure(input: {
  task: Task;
  attempt: number;
  reason: string;
  now: Date;
  leaseOwner?: string;
  policy?: InfrastructureRetryPolicy;
}): RecordOutcome {
  const { task, now } = input;
  const policy = input.policy ?? DEFAULT_INFRASTRUCTURE_POLICY;
  if (input.leaseOwner !== undefined && task.lease?.owner !== input.leaseOwner) {
    return { task, changed: false, next: { kind: 'finish' } };
  }
  const current = task.attempts.find((a) => a.number === input.attempt);
  if (task.status !== 'running' || !current || current.outcome !== 'running') {
    return { task, changed: false, next: nextOf(task, now) };
  }
  const attempts = task.attempts.filter((a) => a !== current);
  const retries = task.infrastructureRetries ?? 0;
  const base: Task = { ...task, attempts };
  let next: Task;
  if (task.cancelRequested) {
    next = transition(
      { ...base, lease: undefined },
      'cancelled',
      { error: { code: 'cancelled', message: 'Cancelled before the attempt started.' } },
      now,
    );
  } else if (retries >= policy.maxRetries) {
    next = transition(
      { ...base, lease: undefined },
      'failed',
      {
        error: {
          code: 'infrastructure_unavailable',
          message: `The worker could not be started ${retries + 1} times in a row; last: ${input.reason}`,
        },
      },
      now,
    );
  } else {
    const notBefore = now.getTime() + infrastructureDelayMs(retries, policy);
    next = transition(
      base,
      'retrying',
      {
        notBefore,
        infrastructureRetries: retries + 1,
        lease: task.lease && { owner: task.lease.owner, expiresAt: notBefore + LEASE_MARGIN_SECONDS * 1000 },
      },
      now,
    );
  }
  return { task: next, changed: true, next: nextOf(next, now) };
}

/**
 * The worker running attempt `attempt` is alive (a heartbeat): the task's lease runs `leaseMs` from
 * `now`, never shorter than it was; the first beat also records where the worker runs. undefined when the task no longer runs that attempt (reaped,
 * cancelled, recorded, or a later attempt began): the worker has lost the task and should stop.
 */
export function renewLease(
  task: Task,
  attempt: number,
  now: Date,
  leaseMs: number,
  /** Where the worker runs (its ECS task ARN), recorded on the attempt for cancel. */
  workerRef?: string,
): Task | undefined {
  const current = task.attempts.find((a) => a.number === attempt);
  const last = task.attempts[task.attempts.length - 1];
  if (task.status !== 'running' || !task.lease || current?.outcome !== 'running' || last !== current) {
    return undefined;
  }
  const expiresAt = Math.max(task.lease.expiresAt, now.getTime() + leaseMs);
  return {
    ...task,
    attempts: workerRef ? task.attempts.map((a) => (a === current ? { ...a, workerRef } : a)) : task.attempts,
    lease: { ...task.lease, expiresAt },
    version: task.version + 1,
    updatedAt: now.toISOString(),
  };
}

/**
 * A running task whose lease expired (its workflow or worker was lost): cancelled if asked,
 * failed when it has no attempts left, else queued again. A retrying task whose lease expired
 * (its workflow stopped between attempts) is queued again the same way, through running, in one
 * write. undefined when the lease still holds.
 *
 * `lostOwner`: the lease holder known to be gone (its process ended), described as such; a task
 * whose lease that owner still holds is taken back at once, whatever its expiry says.
 */
export function reapExpired(
  task: Task,
  role: AgentRole | undefined,
  now: Date,
  lostOwner?: { owner: string; description: string },
): Task | undefined {
  const gone = lostOwner !== undefined && task.lease?.owner === lostOwner.owner;
  if (task.status === 'retrying' && task.lease && (gone || task.lease.expiresAt < now.getTime())) {
    const through = transition(task, 'running', { lease: task.lease }, now);
    const next = reapExpired(through, role, now, lostOwner);
    return next && { ...next, version: task.version + 1 };
  }
  if (task.status !== 'running' || (!gone && (task.lease?.expiresAt ?? 0) >= now.getTime())) return undefined;
  const why = gone ? lostOwner.description : 'its lease expired';
  const attempts = task.attempts.map((a) =>
    a.outcome === 'running'
      ? {
          ...a,
          outcome: 'abandoned' as const,
          endedAt: now.toISOString(),
          message: `abandoned: ${why}`,
        }
      : a,
  );
  const base = { ...task, attempts, lease: undefined, notBefore: undefined };
  if (task.cancelRequested) {
    return transition(
      base,
      'cancelled',
      { error: { code: 'cancelled', message: 'Cancelled; its executor had stopped.' } },
      now,
    );
  }
  if (attemptsThisRun({ ...task, attempts }) >= (role?.maxAttempts ?? 1)) {
    return transition(
      base,
      'failed',
      {
        error: {
          code: 'abandoned',
          message: `The task was running when ${why}, and it has no attempts left.`,
        },
      },
      now,
    );
  }
  return transition(base, 'queued', {}, now);
}

/**
 * A blocked task whose dependencies all succeeded (and whose `waited` tasks, earlier claims on the
 * same files, all ended) is queued; one with a failed, cancelled or missing dependency fails with
 * `dependency_failed` (so its own dependents fail in turn, to the end of the chain), unless it says
 * `onDependencyFailure: "run"`: it is then queued once every dependency has ended, however.
 * undefined while it must keep waiting.
 */
export function releaseBlocked(
  task: Task,
  deps: readonly (Task | undefined)[],
  now: Date,
  waited: readonly (Task | undefined)[] = [],
): Task | undefined {
  if (task.status !== 'blocked') return undefined;
  // an epic: waits for its plan's approval or its sub-tasks, then ends as they did
  if (task.epic && task.epic.stage !== 'planning') {
    return task.epic.stage === 'running' ? epicEnded(task, deps, now) : undefined;
  }
  const failedIndex = deps.findIndex((d) => !d || d.status === 'failed' || d.status === 'cancelled');
  if (failedIndex >= 0 && task.onDependencyFailure !== 'run') {
    const dep = deps[failedIndex];
    const why = dep?.error ? ` (${dep.error.code})` : '';
    return transition(
      task,
      'failed',
      {
        error: {
          code: 'dependency_failed',
          message: `Dependency ${dep?.id ?? task.dependsOn[failedIndex] ?? '?'} ended ${dep?.status ?? 'missing'}${why}.`,
        },
      },
      now,
    );
  }
  // serialized by declared files (file-claims.ts): the earlier tasks must have ended, however they ended
  if (!waitOver(waited)) return undefined;
  return deps.every((d) => d === undefined || isTerminal(d.status)) &&
    (task.onDependencyFailure === 'run' || deps.every((d) => d?.status === 'succeeded'))
    ? transition(task, 'queued', {}, now)
    : undefined;
}
