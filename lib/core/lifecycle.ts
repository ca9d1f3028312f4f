import { ConflictError, type ProviderErrorClass } from './errors.js';
import type { AgentRole } from './roles.js';
import { AUTO_PROVIDER, type Task, type TaskStatus } from './schemas.js';

/**
 * The task lifecycle: the one transition table both executors (local loop, Step Functions) obey.
 * A transition not listed here is a bug or a lost race, and is refused.
 */
export const TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  // an epic waits blocked for its sub-tasks, and succeeds from there when all of them have
  blocked: ['queued', 'failed', 'cancelled', 'succeeded'],
  queued: ['running', 'cancelled', 'blocked'],
  // an epic's planning attempt ends with the epic blocked on its plan
  running: ['succeeded', 'failed', 'retrying', 'cancelled', 'queued', 'blocked'],
  retrying: ['running', 'cancelled', 'failed'],
  succeeded: [],
  failed: ['queued'],
  cancelled: ['queued'],
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Returns the task moved to `to` with `patch` applied and its version bumped. The caller stores it
 * with a conditional write on the previous version.
 */
export function transition(task: Task, to: TaskStatus, patch: Partial<Task>, now: Date): Task {
  if (!canTransition(task.status, to)) {
    throw new ConflictError(`Task ${task.id} is ${task.status}; it cannot become ${to}.`);
  }
  return { ...task, ...patch, status: to, version: task.version + 1, updatedAt: now.toISOString() };
}

/** Attempts made since the task was last (re)queued by hand. */
export function attemptsThisRun(task: Pick<Task, 'attempts' | 'retryFrom'>): number {
  return task.attempts.length - (task.retryFrom ?? 0);
}

/** Error classes worth another attempt on the same provider after a pause. */
export const RETRYABLE: readonly ProviderErrorClass[] = ['rate_limit', 'overloaded', 'timeout', 'crash'];
/** Error classes that belong to one provider (its account, its capacity): another provider may not share them. */
export const PROVIDER_SPECIFIC: readonly ProviderErrorClass[] = [
  'auth',
  'rate_limit',
  'overloaded',
  'not_installed',
];

export interface RetryPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseDelayMs: 2_000, maxDelayMs: 5 * 60_000 };

/** Exponential backoff with full jitter: a random delay in [0, min(max, base * 2^(n-1))]. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export type Decision =
  | { kind: 'succeed' }
  | { kind: 'cancel' }
  | { kind: 'retry'; provider: string; delayMs: number; reason: string }
  | { kind: 'fail'; code: string; message: string };

export interface AttemptResult {
  ok: boolean;
  errorClass?: ProviderErrorClass;
  message?: string;
  /** A failure that no retry can mend; the task fails with this code. */
  fatalCode?: string;
  /** The provider said when to come back (a rate limit's reset): no retry on it sooner. */
  retryAfterMs?: number;
}

/** The provider a task names (`auto` names none: routing chooses). */
export function namedProvider(task: Pick<Task, 'requestedProvider'>): string | undefined {
  return task.requestedProvider === AUTO_PROVIDER ? undefined : task.requestedProvider;
}

/**
 * Picks the provider for the next attempt: the requested one if any, else the first of the
 * role's order that is available and not excluded.
 */
export function chooseProvider(
  task: Pick<Task, 'requestedProvider'>,
  role: AgentRole,
  available: (provider: string) => boolean,
  exclude: readonly string[] = [],
): string | undefined {
  const named = namedProvider(task);
  if (named) return exclude.includes(named) ? undefined : named;
  return role.providers.find((p) => available(p) && !exclude.includes(p));
}

const HUMAN: Record<ProviderErrorClass, string> = {
  auth: 'the provider rejected its credentials',
  rate_limit: 'the provider is rate limiting requests',
  overloaded: 'the provider is overloaded',
  context_overflow: 'the prompt and repository context are too large for the model',
  timeout: 'the agent ran past its time limit',
  crash: 'the agent process failed',
  no_changes: 'the agent made no changes',
  not_installed: 'the provider CLI is not installed',
  budget: 'the agent reached its cost or turn limit',
  workspace: 'the repository could not be prepared or updated',
};

/**
 * What happens after an attempt ends: finish, retry (same or next provider, after a pause), or fail.
 * Pure: the local executor and the Step Functions workflow both call it.
 */
export function decideAfterAttempt(input: {
  task: Task;
  role: AgentRole;
  result: AttemptResult;
  available: (provider: string) => boolean;
  policy?: RetryPolicy;
  random?: () => number;
}): Decision {
  const { task, role, result } = input;
  if (task.cancelRequested) return { kind: 'cancel' };
  if (result.ok) return { kind: 'succeed' };
  const cls = result.errorClass ?? 'crash';
  const current = task.provider ?? '';
  const detail = result.message ? `: ${result.message}` : '';
  const failure = {
    kind: 'fail' as const,
    code: cls,
    message: `${current || 'provider'}: ${HUMAN[cls]}${detail}`,
  };
  if (result.fatalCode)
    return { kind: 'fail', code: result.fatalCode, message: result.message ?? result.fatalCode };
  // the repository or the machine failed, not the provider: another attempt or provider cannot mend it
  if (cls === 'workspace')
    return { kind: 'fail', code: 'workspace', message: result.message ?? HUMAN.workspace };
  const attemptsMade = attemptsThisRun(task);
  const limit = Math.max(1, role.maxAttempts);
  if (attemptsMade >= limit) {
    return attemptsMade > 1
      ? { ...failure, message: `${failure.message} (after ${attemptsMade} attempts)` }
      : failure;
  }
  const tried = [...new Set(task.attempts.map((a) => a.provider))];
  if (PROVIDER_SPECIFIC.includes(cls)) {
    // a named provider is a preference: failover unless the task is pinned to it
    const next = chooseProvider({ requestedProvider: undefined }, role, input.available, tried);
    if (next && !task.pin) {
      const routed = task.requestedProvider === AUTO_PROVIDER;
      return {
        kind: 'retry',
        provider: next,
        delayMs: 0,
        reason: routed
          ? `${current} ${HUMAN[cls]}; the next attempt is routed among the other providers`
          : `${current} ${HUMAN[cls]}; failing over to ${next}`,
      };
    }
  }
  if (RETRYABLE.includes(cls)) {
    const delayMs = Math.max(
      backoffMs(attemptsMade, input.policy ?? DEFAULT_RETRY_POLICY, input.random),
      result.retryAfterMs ?? 0,
    );
    return {
      kind: 'retry',
      provider: current,
      delayMs,
      reason: `${HUMAN[cls]}; retrying in ${Math.round(delayMs / 1000)} s`,
    };
  }
  return failure;
}
