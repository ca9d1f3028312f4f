import { z } from 'zod';
import { NotFoundError } from '../core/errors.js';
import type { RetryPolicy } from '../core/lifecycle.js';
import type { AgentRole } from '../core/roles.js';
import type { Task } from '../core/schemas.js';
import {
  type AttemptOutcomeReport,
  type AttemptPlan,
  prepareAttempt,
  recordAttempt,
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
  | { action: 'stop'; reason: string; status: string };

/**
 * The worker state's time limit in the state machine: the longest agent time limit a task may ask
 * for plus time to pull the image, clone and push. The worker enforces each attempt's own limit
 * itself (and reports `timeout`); this only stops a worker that hangs.
 */
export const WORKER_STATE_TIMEOUT_SECONDS = 24 * 3600 + 900;

export async function prepareStep(deps: StepDeps, raw: unknown): Promise<PrepareOutput> {
  const input = PrepareInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  let outcome: ReturnType<typeof prepareAttempt> | undefined;
  const moved = await mutateTask(deps.store, input.taskId, (t) => {
    outcome = prepareAttempt({
      task: t,
      role: deps.roles[t.role],
      available: deps.available,
      now,
      leaseOwner: input.executionName,
      defaultTimeoutSeconds: deps.defaultTimeoutSeconds,
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

export async function recordStep(deps: StepDeps, raw: unknown): Promise<RecordOutput> {
  const input = RecordInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  const report = reportFrom(await deps.store.getAttemptReport(input.taskId, input.attempt), input.failure);
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
  return result.next.kind === 'retry'
    ? { next: 'retry', waitSeconds: result.next.waitSeconds }
    : { next: 'finish', status: after.status };
}
