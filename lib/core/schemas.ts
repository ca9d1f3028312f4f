import { z } from 'zod';
import { PROVIDER_ERROR_CLASSES } from './errors.js';
import { DeclaredFiles } from './file-claims.js';
import { branchNameProblem } from './git-ref.js';

export const TASK_STATUSES = [
  'queued',
  'blocked',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export const TaskStatus = z.enum(TASK_STATUSES);
export type TaskStatus = z.infer<typeof TaskStatus>;
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export const isTerminal = (s: TaskStatus): boolean => TERMINAL_STATUSES.includes(s);

export const Priority = z.enum(['high', 'normal', 'low']);
export type Priority = z.infer<typeof Priority>;

export const AccessRole = z.enum(['admin', 'operator', 'submitter', 'viewer']);
export type AccessRole = z.infer<typeof AccessRole>;

/** Max prompt length in characters; longer prompts are refused with 413. */
export const MAX_PROMPT_CHARS = 100_000;

const name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" and "-" only');

export const Limits = z
  .object({
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(24 * 3600)
      .optional(),
    cpu: z.number().positive().max(16).optional(),
    memoryMiB: z
      .number()
      .int()
      .min(128)
      .max(120 * 1024)
      .optional(),
    maxCostUsd: z.number().positive().max(10_000).optional(),
  })
  .strict();
export type Limits = z.infer<typeof Limits>;

const gitRef = z
  .string()
  .min(1)
  .max(200)
  .superRefine((s, ctx) => {
    const problem = branchNameProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: `not a branch name git accepts: it ${problem}` });
  });

/** Control characters (C0, DEL, C1): refused in every field but a prompt's tab and line breaks. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL_IN_TEXT = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/;

/** The `provider` value that asks for routing: the provider is chosen per attempt (lib/core/routing.ts). */
export const AUTO_PROVIDER = 'auto';
/** What a failed or cancelled dependency does to a task that depends on it. */
export const OnDependencyFailure = z.enum(['fail', 'run']);
export type OnDependencyFailure = z.infer<typeof OnDependencyFailure>;

/** The body of `POST /v1/tasks`. */
export const TaskSubmission = z
  .object({
    repo: z
      .string()
      .min(1)
      .max(2048)
      .refine((s) => !CONTROL.test(s), 'must not hold control characters (NUL, line breaks, ...)')
      .refine((s) => !s.startsWith('-'), 'must not begin with "-"'),
    prompt: z
      .string()
      .trim()
      .min(1, 'prompt must not be empty')
      .refine(
        (s) => !CONTROL_IN_TEXT.test(s),
        'must not hold control characters (NUL, ...) but tabs and line breaks',
      ),
    baseBranch: gitRef.optional(),
    role: name.optional(),
    provider: name.optional().meta({
      description:
        "The preferred provider (failover to the role's others allowed, unless `pin`), or `auto`: each attempt's provider is chosen from recorded outcomes (see `attempts[].routing`).",
    }),
    pin: z.boolean().optional().meta({
      description:
        'Keep to `provider`: no failover; while its circuit breaker is open the task waits for it. Needs a provider other than `auto`.',
    }),
    priority: Priority.default('normal'),
    dependsOn: z.array(z.string().min(1).max(64)).max(50).default([]),
    limits: Limits.default({}),
    labels: z
      .array(
        z
          .string()
          .min(1)
          .max(64)
          .refine((s) => !CONTROL.test(s), 'must not hold control characters'),
      )
      .max(20)
      .default([]),
    /**
     * The files (or folders, `src/orders/`) the task will change: it waits for earlier tasks on the
     * same repository and base branch that declared any of them to end (file-claims.ts).
     */
    files: DeclaredFiles.optional(),
    /**
     * What a failed or cancelled dependency does to the task: `fail` (the default) fails it with
     * `error.code: dependency_failed`, and so on down the chain; `run` runs it anyway once every
     * dependency has ended.
     */
    onDependencyFailure: OnDependencyFailure.optional().meta({
      description:
        'What a failed or cancelled dependency does to this task: `fail` (default) fails it with `error.code: "dependency_failed"`, and its own dependents in turn, to the end of the chain; `run` runs it anyway once every dependency has ended.',
    }),
    /**
     * An epic: a planning agent first breaks the prompt into sub-tasks (docs/epics.md), which run
     * as a batch under this task; the task succeeds when all of them have.
     */
    decompose: z.boolean().optional().meta({
      description:
        'An epic: a planning agent first breaks the prompt into sub-tasks (a JSON plan, see docs/orchestration.md), which run as a batch under this task (each with `parent`); the task succeeds when all of them have, and fails (`subtask_failed`) when one fails. A plan that is missing or not valid fails it with `invalid_plan`.',
    }),
    approval: z.boolean().optional().meta({
      description:
        'With `decompose`: the plan waits (`epic.stage: "awaiting_approval"`) for `POST /v1/tasks/{id}/approve` before its sub-tasks are stored and run.',
    }),
  })
  .strict();
export type TaskSubmission = z.input<typeof TaskSubmission>;
export type ValidSubmission = z.output<typeof TaskSubmission>;

export const ErrorClass = z.enum(PROVIDER_ERROR_CLASSES);

export const Usage = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative().optional(),
  costUsd: z.number().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;
export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 };

/** One model call as the model gateway recorded it (see lib/core/metering.ts). */
export const ModelCallRecord = z.object({
  at: z.string(),
  provider: z.string(),
  model: z.string(),
  inputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  costUsd: z.number().nonnegative(),
  status: z.number().int(),
  durationMs: z.number().nonnegative(),
});

export const AttemptOutcome = z.enum(['running', 'succeeded', 'failed', 'cancelled', 'abandoned']);
export const Attempt = z.object({
  number: z.number().int().positive(),
  provider: z.string(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  outcome: AttemptOutcome,
  errorClass: ErrorClass.optional(),
  message: z.string().optional(),
  usage: Usage.optional(),
  sessionId: z.string().optional(),
  /** Which executor ran the attempt. */
  executor: z.string().optional(),
  /** Process id of the agent (its process group) while it runs, on the local platform. */
  agentPid: z.number().int().optional(),
  /** The model calls the model gateway saw for this attempt (its ledger); `usage` is their sum. */
  calls: z.array(ModelCallRecord).optional(),
  /** The compute task that runs the attempt's worker (on AWS: its ECS task ARN), for cancel to stop. */
  workerRef: z.string().optional(),
  /** How routing chose the provider (tasks with `provider: "auto"`): the choice, why, each candidate's score. */
  routing: z
    .object({
      choice: z.string(),
      reason: z.string(),
      scores: z.record(z.string(), z.number().nullable()),
      explored: z.boolean(),
    })
    .optional(),
});
export type Attempt = z.infer<typeof Attempt>;

export const TaskErrorInfo = z.object({ code: z.string(), message: z.string() });
export type TaskErrorInfo = z.infer<typeof TaskErrorInfo>;

/** One quality gate's result (`.autodev.yml`), as the task records it. */
export const GateOutcome = z.object({
  name: z.string(),
  ok: z.boolean(),
  /** null when the command was killed (its time limit passed). */
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean().optional(),
  durationMs: z.number().nonnegative(),
  /** The end of a failing gate's output. */
  output: z.string().optional(),
});
export type GateOutcome = z.infer<typeof GateOutcome>;

/**
 * The review agent's last review of the change (`.autodev.yml` `review`): its verdict, or `error` when
 * the reviewer failed (its CLI failed, its answer could not be read, it changed files).
 */
export const TaskReview = z.object({
  provider: z.string(),
  verdict: z.enum(['approve', 'request_changes', 'error']),
  summary: z.string(),
  comments: z.array(z.object({ path: z.string(), line: z.number().int(), body: z.string() })),
});
export type TaskReview = z.infer<typeof TaskReview>;

export const Lease = z.object({ owner: z.string(), expiresAt: z.number() });
export type Lease = z.infer<typeof Lease>;

export const Task = z.object({
  id: z.string(),
  tenant: z.string(),
  status: TaskStatus,
  repo: z.string(),
  baseBranch: z.string().optional(),
  prompt: z.string(),
  role: z.string(),
  provider: z.string().optional(),
  requestedProvider: z.string().optional(),
  /** The task keeps to `requestedProvider`: no failover. */
  pin: z.boolean().optional(),
  priority: Priority,
  dependsOn: z.array(z.string()),
  limits: Limits,
  labels: z.array(z.string()),
  createdBy: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  attempts: z.array(Attempt),
  branch: z.string().optional(),
  commit: z.string().optional(),
  pullRequest: z.object({ url: z.string() }).optional(),
  /** The quality gates of the last attempt that got to them (`.autodev.yml`). */
  gates: z.array(GateOutcome).optional(),
  /** The review agent's last review (`.autodev.yml` `review`). */
  review: TaskReview.optional(),
  summary: z.string().optional(),
  usage: Usage,
  error: TaskErrorInfo.optional(),
  durationMs: z.number().optional(),
  /** Internal bookkeeping, also visible to clients. */
  version: z.number().int().nonnegative(),
  notBefore: z.number().optional(),
  lease: Lease.optional(),
  cancelRequested: z.boolean().optional(),
  /** Attempts before this index belong to earlier runs (before `retry`); they do not count against the limit. */
  retryFrom: z.number().int().nonnegative().optional(),
  /** Infrastructure failures in a row (the worker could not be started); they use no attempt. */
  infrastructureRetries: z.number().int().nonnegative().optional(),
  /** See TaskSubmission; absent: `fail`. */
  onDependencyFailure: OnDependencyFailure.optional(),
  /** The client's key of the task in its batch (`POST /v1/tasks:batch`). */
  key: z.string().optional(),
  /** The epic this task is a sub-task of. */
  parent: z.string().optional(),
  /** An epic (see TaskSubmission); `epic` says where its plan stands. */
  decompose: z.boolean().optional(),
  approval: z.boolean().optional(),
  epic: z
    .object({
      /**
       * planning: its planning agent runs; awaiting_approval: the plan waits for
       * `POST /v1/tasks/{id}/approve`; planned: its sub-tasks are being stored; running: they run.
       */
      stage: z.enum(['planning', 'awaiting_approval', 'planned', 'running']),
      /** The plan as the planning agent gave it (validated). */
      plan: z.array(z.record(z.string(), z.unknown())).optional(),
      /** The sub-tasks' ids, in the plan's order. */
      children: z.array(z.string()).optional(),
      approvedBy: z.string().optional(),
    })
    .optional(),
  /** An epic's sub-tasks as they are now (read with the epic, not stored on it). */
  subtasks: z.array(z.object({ id: z.string(), key: z.string().optional(), status: TaskStatus })).optional(),
  /** The task's trace (W3C trace id, 32 hex digits): every span and log line of the task carries it. */
  traceId: z.string().optional(),
  /** The W3C `traceparent` of the submission: later steps (executor, workflow, worker) are its children. */
  traceParent: z.string().optional(),
  /** The files the task declared it will change. */
  files: z.array(z.string()).optional(),
  /** Earlier tasks that declared some of the same files: this one waits for them to end. */
  waitsFor: z.array(z.string()).optional(),
});
export type Task = z.infer<typeof Task>;

/** Formats zod issues as `field: message` strings for a 400 body. */
export function describeIssues(err: z.ZodError): { field: string; message: string }[] {
  return err.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
}
