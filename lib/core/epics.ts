import { z } from 'zod';
import { BatchKey, batchGraph, MAX_BATCH_TASKS } from './batches.js';
import { ValidationError } from './errors.js';
import { newTaskId } from './ids.js';
import { transition } from './lifecycle.js';
import { MAX_PROMPT_CHARS, type Task, ZERO_USAGE } from './schemas.js';

/**
 * Epics (`decompose: true`): the task's first attempt is a planning agent, which answers with a
 * plan (PLAN below); the plan's sub-tasks run as a batch under the task (each with `parent`), at
 * once or once the plan is approved (`approval: true`, `POST /v1/tasks/{id}/approve`); the task
 * succeeds when all of them have, and fails when one fails. Pure: the engines apply these steps
 * (the record step reads the plan, the release step starts and ends the epic).
 */

/** Where a planning agent may write its plan instead of answering with it. */
export const PLAN_FILE = 'AUTODEV_PLAN.json';
/** The largest plan read (its answer or its file), in characters. */
export const MAX_PLAN_BYTES = 200_000;

const roleName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/);

/** One sub-task of a plan. */
export const PlanTask = z
  .object({
    key: BatchKey,
    prompt: z.string().trim().min(1).max(MAX_PROMPT_CHARS),
    /** The agent role (default: the epic's). */
    role: roleName.optional(),
    /** The preferred provider (default: the epic's). */
    provider: roleName.optional(),
    /** Keys of other sub-tasks of the plan that must succeed first. */
    dependsOn: z.array(BatchKey).max(50).default([]),
  })
  .strict();

/** The plan a planning agent answers with (documented in docs/orchestration.md). */
export const Plan = z.object({ tasks: z.array(PlanTask).min(1).max(MAX_BATCH_TASKS) }).strict();
export type Plan = z.output<typeof Plan>;

/** Whether the task's next attempt is its planning agent (an epic without a plan yet). */
export function isPlanning(task: Pick<Task, 'decompose' | 'epic'>): boolean {
  return task.decompose === true && (task.epic === undefined || task.epic.stage === 'planning');
}

/** The prompt of a planning attempt: what to do, the plan's schema, then the epic itself. */
export function planningPrompt(prompt: string): string {
  return [
    'You are planning, not implementing. Break the task below into small sub-tasks that other',
    'agents will carry out, each on its own branch of this repository. Read the repository as',
    'you need; change nothing.',
    '',
    'Answer with the plan as one JSON object in a ```json block (or write it to',
    `${PLAN_FILE} at the root of the repository), in this shape:`,
    '',
    '{"tasks": [',
    '  {"key": "schema", "prompt": "what this sub-task must do, fully stated", "role": "backend"},',
    '  {"key": "api", "prompt": "...", "dependsOn": ["schema"]}',
    ']}',
    '',
    `- at most ${MAX_BATCH_TASKS} tasks; "key": letters, digits, ".", "_" or "-", unique;`,
    '- "dependsOn": keys of sub-tasks that must succeed first (no cycles);',
    '- "role" (optional): backend, frontend, data, ml, devops, security or docs;',
    '- each "prompt" stands alone: the agent that runs it sees nothing else.',
    '',
    '## The task',
    '',
    prompt,
  ].join('\n');
}

/**
 * The plan in what a planning agent left: the file PLAN_FILE when it wrote one, else the last
 * ```json block of its answer, else its whole answer. undefined when nothing there is JSON.
 */
export function extractPlan(answer: string | undefined, file: string | undefined): unknown {
  const candidates = [
    file,
    ...[...(answer ?? '').matchAll(/```(?:json)?\s*\n([\s\S]*?)```/g)].map((m) => m[1]).reverse(),
    answer,
  ];
  for (const text of candidates) {
    if (!text?.trim() || text.length > MAX_PLAN_BYTES) continue;
    try {
      return JSON.parse(text);
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * Checks a plan: its shape, keys unique, dependencies among its keys without cycles, roles known.
 * The error says what is wrong, for the epic's `error.message`.
 */
export function checkPlan(
  raw: unknown,
  /** The agent roles configured; undefined: not checked. */
  roleNames: readonly string[] | undefined,
): { ok: true; plan: Plan } | { ok: false; message: string } {
  if (raw === undefined) {
    return {
      ok: false,
      message: 'The planning agent gave no plan: no JSON in its answer or in the plan file.',
    };
  }
  const parsed = Plan.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(plan)'}: ${i.message}`)
      .join('; ');
    return { ok: false, message: `The plan is not valid: ${issues}.` };
  }
  const plan = parsed.data;
  const keys = new Set<string>();
  for (const [i, t] of plan.tasks.entries()) {
    if (keys.has(t.key))
      return { ok: false, message: `The plan is not valid: tasks.${i}.key "${t.key}" is used twice.` };
    keys.add(t.key);
  }
  for (const [i, t] of plan.tasks.entries()) {
    const unknown = t.dependsOn.find((d) => !keys.has(d));
    if (unknown) {
      return {
        ok: false,
        message: `The plan is not valid: tasks.${i}.dependsOn names "${unknown}", no task of the plan.`,
      };
    }
    if (t.role && roleNames && !roleNames.includes(t.role)) {
      return {
        ok: false,
        message: `The plan is not valid: tasks.${i}.role "${t.role}" is no agent role here.`,
      };
    }
  }
  try {
    batchGraph(plan.tasks);
  } catch (err) {
    if (err instanceof ValidationError)
      return { ok: false, message: `The plan is not valid: ${err.message}` };
    throw err;
  }
  return { ok: true, plan };
}

/**
 * The epic after its planning attempt succeeded with `plan`: blocked, its plan recorded, waiting for
 * approval when it asked for it, else ready for its sub-tasks (the release step starts them).
 */
export function planned(task: Task, plan: Plan, patch: Partial<Task>, now: Date): Task {
  return transition(
    task,
    'blocked',
    {
      ...patch,
      lease: undefined,
      epic: { stage: task.approval ? 'awaiting_approval' : 'planned', plan: plan.tasks },
      summary: `Planned ${plan.tasks.length} sub-task(s): ${plan.tasks.map((t) => t.key).join(', ')}.${
        task.approval ? ' Waiting for approval (POST /v1/tasks/{id}/approve).' : ''
      }`,
    },
    now,
  );
}

/** The epic's sub-tasks as new task records: the plan's tasks under `parent`, keys resolved to ids. */
export function epicChildren(parent: Task, now: Date): Task[] {
  const plan = (parent.epic?.plan ?? []) as z.input<typeof PlanTask>[];
  const ids = plan.map((_, i) => newTaskId(now.getTime() + i));
  const idOf = (key: string) => ids[plan.findIndex((t) => t.key === key)] as string;
  return plan.map((t, i) => {
    const dependsOn = (t.dependsOn ?? []).map(idOf);
    return {
      id: ids[i] as string,
      tenant: parent.tenant,
      status: dependsOn.length > 0 ? 'blocked' : 'queued',
      repo: parent.repo,
      baseBranch: parent.baseBranch,
      prompt: t.prompt,
      role: t.role ?? parent.role,
      requestedProvider: t.provider ?? parent.requestedProvider,
      priority: parent.priority,
      dependsOn,
      limits: parent.limits,
      labels: parent.labels,
      key: t.key,
      parent: parent.id,
      createdBy: parent.createdBy,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      attempts: [],
      usage: { ...ZERO_USAGE },
      version: 0,
      traceId: parent.traceId,
      traceParent: parent.traceParent,
    };
  });
}

/** The epic once its sub-tasks are stored: it waits for them (as for dependencies, see releaseTask). */
export function epicStarted(parent: Task, children: readonly Task[], now: Date): Task | undefined {
  if (parent.status !== 'blocked' || parent.epic?.stage !== 'planned') return undefined;
  const ids = children.map((c) => c.id);
  return {
    ...parent,
    epic: { ...parent.epic, stage: 'running', children: ids },
    version: parent.version + 1,
    updatedAt: now.toISOString(),
  };
}

/**
 * A running epic whose sub-tasks ended: succeeded when all did, failed (`subtask_failed`) when one
 * failed or was cancelled. undefined while one still runs.
 */
export function epicEnded(
  parent: Task,
  children: readonly (Task | undefined)[],
  now: Date,
): Task | undefined {
  const failed = children.find((c) => !c || c.status === 'failed' || c.status === 'cancelled');
  if (failed !== undefined || children.some((c) => c === undefined)) {
    return transition(
      parent,
      'failed',
      {
        error: {
          code: 'subtask_failed',
          message: `Sub-task ${failed?.key ?? '?'} (${failed?.id ?? 'missing'}) ended ${failed?.status ?? 'missing'}${
            failed?.error ? `: ${failed.error.message}` : ''
          }`,
        },
        durationMs: now.getTime() - Date.parse(parent.createdAt),
      },
      now,
    );
  }
  if (!children.every((c) => c?.status === 'succeeded')) return undefined;
  return transition(
    parent,
    'succeeded',
    {
      summary: `All ${children.length} sub-task(s) succeeded: ${children.map((c) => c?.key).join(', ')}.`,
      durationMs: now.getTime() - Date.parse(parent.createdAt),
      error: undefined,
    },
    now,
  );
}

/**
 * How a planning attempt that succeeded ends: the epic planned (blocked, see `planned`), or failed
 * with `invalid_plan` when the plan is missing or not valid (no retry: the agent answered).
 */
export function afterPlanning(
  task: Task,
  rawPlan: unknown,
  roleNames: readonly string[] | undefined,
  now: Date,
): Task {
  const checked = checkPlan(rawPlan, roleNames);
  if (checked.ok) return planned(task, checked.plan, {}, now);
  return transition(
    task,
    'failed',
    {
      lease: undefined,
      error: { code: 'invalid_plan', message: checked.message },
      durationMs: now.getTime() - Date.parse(task.createdAt),
    },
    now,
  );
}
