import { z } from 'zod';
import { PayloadTooLargeError, ValidationError } from './errors.js';
import { MAX_PROMPT_CHARS, TaskSubmission, type ValidSubmission } from './schemas.js';

/**
 * Batches (`POST /v1/tasks:batch`): up to MAX_BATCH_TASKS tasks submitted together, all or none,
 * each with a client-side `key` that the others' `dependsOn` may name (besides ids of tasks that
 * exist). Pure: the shape, the keys and the dependency graph (no cycles) are checked here; the
 * task service checks the existing ids against the store.
 */

export const MAX_BATCH_TASKS = 100;

/** A task's key in its batch: chosen by the client, unique within the batch. */
export const BatchKey = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only');

/** One entry of a batch: a task submission with its key. */
export const BatchEntry = TaskSubmission.extend({ key: BatchKey });
export type BatchEntry = z.output<typeof BatchEntry>;

/** The body of `POST /v1/tasks:batch`. */
export const BatchSubmission = z
  .object({ tasks: z.array(z.unknown()).min(1, 'a batch needs at least one task').max(MAX_BATCH_TASKS) })
  .strict();

const invalid = (field: string, message: string, detail: string) =>
  new ValidationError(message, [{ field, message: detail }]);

/** Validates a batch body: each entry as a task submission, keys unique. Errors name `tasks.<i>.<field>`. */
export function parseBatch(body: unknown): BatchEntry[] {
  const outer = BatchSubmission.safeParse(body);
  if (!outer.success) {
    const issue = outer.error.issues[0];
    const field = issue?.path.join('.') || '(body)';
    throw invalid(
      field,
      `The batch is not valid: ${field}: ${issue?.message ?? 'invalid'}.`,
      issue?.message ?? '',
    );
  }
  const seen = new Map<string, number>();
  return outer.data.tasks.map((raw, i) => {
    const prompt = (raw as { prompt?: unknown } | null)?.prompt;
    if (typeof prompt === 'string' && prompt.length > MAX_PROMPT_CHARS) {
      throw new PayloadTooLargeError(
        `tasks.${i}.prompt has ${prompt.length} characters; the limit is ${MAX_PROMPT_CHARS}.`,
      );
    }
    const parsed = BatchEntry.safeParse(raw);
    if (!parsed.success) {
      const details = parsed.error.issues.map((x) => ({
        field: ['tasks', i, ...x.path].join('.'),
        message: x.message,
      }));
      throw new ValidationError(
        `Task ${i} of the batch is not valid: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}.`,
        details,
      );
    }
    const earlier = seen.get(parsed.data.key);
    if (earlier !== undefined) {
      throw invalid(
        `tasks.${i}.key`,
        `Task ${i} of the batch has the key "${parsed.data.key}", as task ${earlier} has.`,
        'duplicate key',
      );
    }
    seen.set(parsed.data.key, i);
    return parsed.data;
  });
}

/** How a batch's dependencies resolve: among its own keys, or to tasks that exist. */
export interface BatchGraph {
  /** Per entry: the indexes of the entries it depends on. */
  internal: number[][];
  /** Per entry: the ids of existing tasks it depends on (to check against the store). */
  external: string[][];
  /** Entry indexes in an order where each comes after what it depends on. */
  order: number[];
}

/**
 * Resolves each `dependsOn` to a key of the batch or an existing task id (anything that is not a
 * key of the batch), and refuses a cycle (a task that depends, through others or not, on itself),
 * naming the keys on it.
 */
export function batchGraph(entries: readonly Pick<BatchEntry, 'key' | 'dependsOn'>[]): BatchGraph {
  const index = new Map(entries.map((e, i) => [e.key, i]));
  const internal = entries.map((e) => [
    ...new Set(e.dependsOn.filter((d) => index.has(d)).map((d) => index.get(d) as number)),
  ]);
  const external = entries.map((e) => [...new Set(e.dependsOn.filter((d) => !index.has(d)))]);
  const order = topologicalOrder(internal);
  if (order.length < entries.length) {
    const cycle = findCycle(internal, new Set(order));
    const first = cycle[0] ?? 0;
    const names = [...cycle, first].map((i) => entries[i]?.key).join(' → ');
    throw invalid(
      `tasks.${first}.dependsOn`,
      `The batch's dependencies form a cycle: ${names}.`,
      `cycle: ${names}`,
    );
  }
  return { internal, external, order };
}

/** Kahn's algorithm over `deps` (entry → what it depends on): the entries not on or behind a cycle. */
function topologicalOrder(deps: number[][]): number[] {
  const waiting = deps.map((d) => d.length);
  const dependents = deps.map(() => [] as number[]);
  deps.forEach((d, i) => {
    for (const j of d) dependents[j]?.push(i);
  });
  const ready = waiting.flatMap((n, i) => (n === 0 ? [i] : []));
  const order: number[] = [];
  while (ready.length > 0) {
    const i = ready.shift() as number;
    order.push(i);
    for (const k of dependents[i] ?? []) {
      waiting[k] = (waiting[k] ?? 0) - 1;
      if (waiting[k] === 0) ready.push(k);
    }
  }
  return order;
}

/** One cycle among the entries Kahn's algorithm could not order, as entry indexes. */
function findCycle(deps: number[][], ordered: Set<number>): number[] {
  const start = deps.findIndex((_, i) => !ordered.has(i));
  const path: number[] = [];
  const at = new Map<number, number>();
  let i = start;
  // every unordered entry depends on another unordered one: walking them must come back
  while (!at.has(i)) {
    at.set(i, path.length);
    path.push(i);
    i = (deps[i] ?? []).find((j) => !ordered.has(j)) ?? start;
  }
  return path.slice(at.get(i));
}

/** The submission part of an entry (what a single `POST /v1/tasks` would carry). */
export function submissionOf(entry: BatchEntry): ValidSubmission {
  const { key: _key, ...rest } = entry;
  return rest;
}
