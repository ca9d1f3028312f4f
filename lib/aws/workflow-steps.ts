import { z } from 'zod';
import { NotFoundError } from '../core/errors.js';
import { classifyWorkerFailure, type InfrastructureRetryPolicy } from '../core/infrastructure.js';
import type { RetryPolicy } from '../core/lifecycle.js';
import {
  admitProvider,
  type BreakerPolicy,
  type ProviderStateStore,
  type RatePolicy,
  recordProviderResult,
} from '../core/provider-health.js';
import type { AgentRole } from '../core/roles.js';
import type { Task } from '../core/schemas.js';
import {
  type AttemptOutcomeReport,
  type AttemptPlan,
  deferAttempt,
  prepareAttempt,
  providerCandidates,
  recordAttempt,
  recordInfrastructureFailure,
} from '../core/workflow.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';
import { fargateSize } from './fargate.js';
import { mutateTask } from './mutate-task.js';

export interface StepDeps {
  store: Pick<DynamoTaskStore, 'getById' | 'put' | 'appendLogs' | 'getAttemptReport'>;
  roles: Record<string, AgentRole>;
  available: (provider: string) => boolean;
  now?: () => Date;
  policy?: RetryPolicy;
  /** Jitter source for retry delays (tests fix it). */
  random?: () => number;
  defaultTimeoutSeconds?: number;
  /** Provider health shared by every execution (circuit breaker, token bucket); none: every provider admits. */
  health?: { store: ProviderStateStore; breaker?: BreakerPolicy; rate?: RatePolicy };
  /** Backoff for workers the infrastructure could not start. @default DEFAULT_INFRASTRUCTURE_POLICY */
  infrastructure?: InfrastructureRetryPolicy;
  /** Told once when this step moved a task to its end (succeeded, failed, cancelled): notifications. */
  onFinished?: (task: Task) => Promise<void>;
}

export const PrepareInput = z.object({
  taskId: z.string(),
  tenant: z.string(),
  executionName: z.string(),
});

/** What the state machine reads after prepare: run the worker with this plan, or stop. */
export type PrepareOutput =
  | {
      action: 'run';
      plan: AttemptPlan & {
        /** Fargate CPU units and memory (MiB) as strings, the form ECS overrides take. */
        cpuUnits: string;
        memory: string;
      };
    }
  | { action: 'stop'; reason: string; status: string }
  /** No provider admits work now: wait, then prepare again. */
  | { action: 'wait'; waitSeconds: number; reason: string };

/**
 * The worker state's time limit in the state machine: the longest agent time limit a task may ask
 * for plus time to pull the image, clone and push. The worker enforces each attempt's own limit
 * itself (and reports `timeout`); this only stops a worker that hangs.
 */
export const WORKER_STATE_TIMEOUT_SECONDS = 24 * 3600 + 900;

/**
 * Asks provider health for the first candidate that admits an attempt now (the same order and the
 * same core functions as the local executor). Returns the provider, or how long to wait.
 */
async function admitOne(
  deps: StepDeps,
  task: Task,
  role: AgentRole,
  now: Date,
): Promise<{ provider: string } | { waitMs: number; reason: string }> {
  const candidates = providerCandidates(task, role, deps.available);
  const { health } = deps;
  if (!health) return { provider: candidates[0] as string };
  const refusals: string[] = [];
  let waitMs = Number.POSITIVE_INFINITY;
  for (const p of candidates) {
    const a = await admitProvider(health.store, p, now.getTime(), health.breaker, health.rate);
    if (a.ok) return { provider: p };
    refusals.push(`${p} (${a.reason === 'breaker_open' ? 'circuit breaker open' : 'rate limit'})`);
    waitMs = Math.min(waitMs, a.retryAfterMs);
  }
  return { waitMs: Math.max(1000, waitMs), reason: `no provider admits work now: ${refusals.join(', ')}` };
}

export async function prepareStep(deps: StepDeps, raw: unknown): Promise<PrepareOutput> {
  const input = PrepareInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  const current = await deps.store.getById(input.taskId);
  if (!current) throw new NotFoundError(`No task ${input.taskId}.`);
  const role = deps.roles[current.role];
  const base = { role, available: deps.available, now, leaseOwner: input.executionName };
  const preview = prepareAttempt({ task: current, ...base });
  let provider: string | undefined;
  if (role && preview.action === 'run' && preview.changed) {
    const admitted = await admitOne(deps, current, role, now);
    if ('waitMs' in admitted) {
      const notBefore = now.getTime() + admitted.waitMs;
      const deferred = await mutateTask(deps.store, input.taskId, (t) =>
        t.lease?.owner === input.executionName ? deferAttempt(t, notBefore, now) : undefined,
      );
      if (deferred?.after) await deps.store.appendLogs(input.taskId, [`waiting: ${admitted.reason}`], now);
      return { action: 'wait', waitSeconds: Math.ceil(admitted.waitMs / 1000), reason: admitted.reason };
    }
    provider = admitted.provider;
  }
  let outcome: ReturnType<typeof prepareAttempt> | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    outcome = prepareAttempt({
      task: t,
      role: deps.roles[t.role],
      available: deps.available,
      now,
      leaseOwner: input.executionName,
      defaultTimeoutSeconds: deps.defaultTimeoutSeconds,
      provider,
    });
    return outcome.changed ? outcome.task : undefined;
  });
  if (!moved || !outcome) throw new NotFoundError(`No task ${input.taskId}.`);
  if (outcome.action === 'stop') {
    if (moved.after)
      await deps.store.appendLogs(input.taskId, [`task ${moved.after.status}: ${outcome.reason}`], now);
    return { action: 'stop', reason: outcome.reason, status: outcome.task.status };
  }
  const { plan } = outcome;
  const size = fargateSize(plan.cpu, plan.memoryMiB);
  if (moved.after) {
    await deps.store.appendLogs(input.taskId, [`attempt ${plan.attempt} on ${plan.provider}`], now);
  }
  return {
    action: 'run',
    plan: {
      ...plan,
      cpuUnits: size.cpu,
      memory: size.memory,
    },
  };
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
  let result: ReturnType<typeof recordInfrastructureFailure> | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    result = recordInfrastructureFailure({
      task: t,
      attempt: input.attempt,
      reason,
      now,
      leaseOwner: input.executionName,
      policy: deps.infrastructure,
    });
    return result.changed ? result.task : undefined;
  });
  if (!moved || !result) throw new NotFoundError(`No task ${input.taskId}.`);
  const after = result.task;
  if (moved.after) {
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
  let result: ReturnType<typeof recordAttempt> | undefined;
  let task: Task | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    task = t;
    const role = deps.roles[t.role];
    if (!role) return undefined;
    result = recordAttempt({
      task: t,
      role,
      attempt: input.attempt,
      report,
      available: deps.available,
      now,
      leaseOwner: input.executionName,
      policy: deps.policy,
      random: deps.random,
    });
    return result.changed ? result.task : undefined;
  });
  if (!moved || !task) throw new NotFoundError(`No task ${input.taskId}.`);
  if (!result) return { next: 'finish', status: task.status };
  const after = result.task;
  const provider = task.attempts.find((a) => a.number === input.attempt)?.provider;
  // a cancelled attempt says nothing about the provider
  if (moved.after && deps.health && provider && !task.cancelRequested) {
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
  if (moved.after) {
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
  if (moved.after && result.next.kind !== 'retry' && deps.onFinished) await deps.onFinished(after);
  return result.next.kind === 'retry'
    ? { next: 'retry', waitSeconds: result.next.waitSeconds }
    : { next: 'finish', status: after.status };
}
