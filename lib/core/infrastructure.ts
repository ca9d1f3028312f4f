/**
 * Failures of the platform that runs a worker, not of the provider or the agent: no compute
 * capacity, a throttled or refused start, an image that cannot be pulled, a network interface or
 * secret that cannot be set up. They are retried as infrastructure (with their own backoff) and
 * use no attempt and trip no provider's circuit breaker.
 */

/**
 * The worker of an attempt could not be started (an engine's own failure, before any agent ran):
 * recorded with `recordInfrastructureFailure`, as a worker the infrastructure never ran.
 */
export class InfrastructureError extends Error {
  override readonly name = 'InfrastructureError';
}

/** How the worker's container failed, as the workflow saw it (Step Functions' Catch: Error and Cause). */
export interface WorkerFailure {
  Error?: string;
  Cause?: string;
}

export type WorkerFailureKind = 'infrastructure' | 'timeout' | 'crash';

/**
 * Reasons ECS gives for a task it could not place or start (RunTask `failures[].reason`, a stopped
 * task's `stoppedReason` / `stopCode`, a container's `reason`).
 */
const INFRASTRUCTURE_REASONS = [
  'Capacity is unavailable',
  'CannotPullContainerError',
  'ResourceInitializationError',
  'CannotCreateVolumeError',
  'TaskFailedToStart',
  'SpotInterruption',
  'ThrottlingException',
  'Rate exceeded',
  'RESOURCE:',
];

/** Step Functions' error names for a failed ECS API call (RunTask refused, throttled or unavailable). */
const ECS_API_ERROR = /^ECS\./;

/**
 * What a worker failure without a report means: the infrastructure never ran the worker (or took
 * it away), the worker ran past its time limit, or the worker crashed.
 */
export function classifyWorkerFailure(failure: WorkerFailure | null | undefined): WorkerFailureKind {
  const error = failure?.Error ?? '';
  if (error === 'States.Timeout') return 'timeout';
  if (ECS_API_ERROR.test(error)) return 'infrastructure';
  const cause = failure?.Cause ?? '';
  return INFRASTRUCTURE_REASONS.some((r) => cause.includes(r)) ? 'infrastructure' : 'crash';
}

export interface InfrastructureRetryPolicy {
  /** Delay before the first retry; each further one doubles it. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Infrastructure failures in a row after which the task fails (code `infrastructure_unavailable`). */
  maxRetries: number;
}

/** 30 s, 1 min, 2 min … 15 min; 24 failures in a row (about 5 hours) end the task. */
export const DEFAULT_INFRASTRUCTURE_POLICY: InfrastructureRetryPolicy = {
  baseDelayMs: 30_000,
  maxDelayMs: 15 * 60_000,
  maxRetries: 24,
};

/** The delay before infrastructure retry number `retry` (0 for the first). */
export function infrastructureDelayMs(retry: number, policy = DEFAULT_INFRASTRUCTURE_POLICY): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry, 30));
}
