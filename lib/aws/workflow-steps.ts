import { z } from 'zod';
import { NotFoundError } from '../core/errors.js';
import { classifyWorkerFailure } from '../core/infrastructure.js';
import type { Task } from '../core/schemas.js';
import type { AttemptOutcomeReport, AttemptPlan } from '../core/workflow.js';
import {
  type EngineDeps,
  prepareNext,
  recordInfrastructureNext,
  recordNext,
} from '../core/workflow-engine.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';
import { fargateSize } from './fargate.js';

/** The Lambda steps run the shared workflow steps (lib/core/workflow-engine) over DynamoDB. */
export interface StepDeps extends EngineDeps {
  store: Pick<DynamoTaskStore, 'getById' | 'put' | 'appendLogs' | 'getAttemptReport'>;
  now?: () => Date;
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

export async function prepareStep(deps: StepDeps, raw: unknown): Promise<PrepareOutput> {
  const input = PrepareInput.parse(raw);
  const now = (deps.now ?? (() => new Date()))();
  const prepared = await prepareNext(deps, { taskId: input.taskId, leaseOwner: input.executionName, now });
  if (!prepared) throw new NotFoundError(`No task ${input.taskId}.`);
  if (prepared.action === 'wait') {
    if (prepared.moved) await deps.store.appendLogs(input.taskId, [`waiting: ${prepared.reason}`], now);
    return { action: 'wait', waitSeconds: Math.ceil(prepared.waitMs / 1000), reason: prepared.reason };
  }
  if (prepared.action === 'stop') {
    if (prepared.moved)
      await deps.store.appendLogs(input.taskId, [`task ${prepared.task.status}: ${prepared.reason}`], now);
    return { action: 'stop', reason: prepared.reason, status: prepared.task.status };
  }
  const { plan } = prepared;
  const size = fargateSize(plan.cpu, plan.memoryMiB);
  if (prepared.moved) {
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
  const result = await recordInfrastructureNext(deps, {
    taskId: input.taskId,
    attempt: input.attempt,
    reason,
    leaseOwner: input.executionName,
    now,
  });
  if (!result) throw new NotFoundError(`No task ${input.taskId}.`);
  const after = result.task;
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
  const result = await recordNext(deps, {
    taskId: input.taskId,
    attempt: input.attempt,
    report,
    leaseOwner: input.executionName,
    now,
  });
  if (!result) throw new NotFoundError(`No task ${input.taskId}.`);
  const after = result.task;
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
