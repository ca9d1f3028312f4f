import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { Priority, Task } from './schemas.js';

/**
 * Fair admission across tenants, in both shapes' terms: which ready task starts next.
 *
 * - **Between tenants**: weighted round-robin by start (stride scheduling). Each tenant has a pass;
 *   starting one of its tasks adds `1 / weight` to it; the backlogged tenant with the lowest pass
 *   goes next, ties to the one served longest ago. A tenant that had nothing ready cannot bank
 *   credit: its pass is raised to the virtual time (the pass of the last start) when it comes
 *   back. So a tenant with 500 queued tasks and one that submits a single task share the next
 *   free slot: the newcomer gets it.
 * - **Within a tenant**: priority order (`high`, `normal`, `low`), oldest first within a priority.
 * - **Aging**: a task's priority rises one level for every `agingMs` it has waited since it was
 *   created (`low` counts as `normal` after agingMs and as `high` after twice that); among tasks of
 *   the same effective priority the oldest goes first, so a `low` task starts at the latest once it
 *   is the oldest `high`-equivalent task of its tenant, however many `normal` and `high` ones
 *   keep arriving.
 * - **Concurrency per role**: a task whose agent role is at its `maxConcurrent` does not start; its
 *   tenant's next task of another role may.
 */

export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { high: 0, normal: 1, low: 2 };

/** Weights by tenant (`*` for every tenant not named; default 1) and the aging step. */
export interface FairSharePolicy {
  weights: Readonly<Record<string, number>>;
  /** A waiting task's priority rises one level per this many milliseconds. */
  agingMs: number;
}

/** Ten minutes: a `low` task is treated as `high` after twenty minutes of waiting. */
export const DEFAULT_AGING_MS = 600_000;
export const EQUAL_SHARES: FairSharePolicy = { weights: {}, agingMs: DEFAULT_AGING_MS };

/** What the scheduler remembers between picks (kept by the process that admits tasks). */
export interface FairShareState {
  /** Per tenant: the sum of 1/weight over its starts, raised to `virtualTime` when it comes back. */
  readonly pass: Readonly<Record<string, number>>;
  /** Per tenant: the sequence number of its last start (lower: served longer ago). */
  readonly lastServed: Readonly<Record<string, number>>;
  /** The pass of the tenant served last: where a tenant coming back starts. */
  readonly virtualTime: number;
  readonly seq: number;
}

export const INITIAL_FAIR_SHARE_STATE: FairShareState = {
  pass: {},
  lastServed: {},
  virtualTime: 0,
  seq: 0,
};

export function weightOf(policy: FairSharePolicy, tenant: string): number {
  if (Object.hasOwn(policy.weights, tenant)) return policy.weights[tenant] as number;
  return policy.weights['*'] ?? 1;
}

/** The task's priority rank after aging: 0 (high) to 2 (low). */
export function effectiveRank(
  task: Pick<Task, 'priority' | 'createdAt'>,
  now: number,
  agingMs: number,
): number {
  const waited = Math.max(0, now - Date.parse(task.createdAt));
  const steps = agingMs > 0 ? Math.floor(waited / agingMs) : 0;
  return Math.max(0, PRIORITY_RANK[task.priority] - steps);
}

/** What the fair order reads of a task: a parked workflow's waiter has no role limit to check. */
export type FairCandidate = Pick<Task, 'id' | 'tenant' | 'priority' | 'createdAt'> &
  Partial<Pick<Task, 'role'>>;

/** Within a tenant: effective priority first, then the oldest (ids sort by creation time). */
export function compareWithinTenant(now: number, agingMs: number) {
  return (a: FairCandidate, b: FairCandidate) =>
    effectiveRank(a, now, agingMs) - effectiveRank(b, now, agingMs) ||
    Date.parse(a.createdAt) - Date.parse(b.createdAt) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const passOf = (state: FairShareState, tenant: string) =>
  Math.max(state.pass[tenant] ?? Number.NEGATIVE_INFINITY, state.virtualTime);

/** Running tasks per agent role. */
export function countByRole(running: readonly Pick<Task, 'role'>[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of running) counts.set(t.role, (counts.get(t.role) ?? 0) + 1);
  return counts;
}

/** Whether a task of `role` may start with `running` tasks of each role already running. */
export function roleAdmits(
  role: string,
  running: ReadonlyMap<string, number>,
  roleLimits: Readonly<Record<string, number | undefined>>,
): boolean {
  const limit = roleLimits[role];
  return limit === undefined || (running.get(role) ?? 0) < limit;
}

export interface PickInput<T extends FairCandidate = Task> {
  /**
   * Ready tasks: at least each tenant's first task of each role and priority (the store's
   * head-of-queue query); more is allowed.
   */
  ready: readonly T[];
  /** Tasks running now (every executor), for the per-role limits. */
  running: readonly Pick<Task, 'role'>[];
  /** `maxConcurrent` of each agent role that has one. */
  roleLimits: Readonly<Record<string, number | undefined>>;
  policy: FairSharePolicy;
  state: FairShareState;
  now: number;
}

/**
 * The tasks to try to start, best first: one per tenant (its most urgent task whose role admits
 * work), tenants in fair order. Empty when nothing ready may start.
 */
export function pickOrder<T extends FairCandidate = Task>(input: PickInput<T>): T[] {
  const { policy, state, now } = input;
  const byRole = countByRole(input.running);
  const best = new Map<string, T>();
  const order = compareWithinTenant(now, policy.agingMs);
  for (const task of input.ready) {
    if (task.role !== undefined && !roleAdmits(task.role, byRole, input.roleLimits)) continue;
    const current = best.get(task.tenant);
    if (!current || order(task, current) < 0) best.set(task.tenant, task);
  }
  const tenants = tenantOrder([...best.keys()], state);
  return tenants.map((t) => best.get(t) as T);
}

/** Tenants in the order their next task goes: lowest pass first, then the one served longest ago. */
export function tenantOrder(tenants: readonly string[], state: FairShareState): string[] {
  return [...tenants].sort(
    (a, b) =>
      passOf(state, a) - passOf(state, b) ||
      (state.lastServed[a] ?? -1) - (state.lastServed[b] ?? -1) ||
      (a < b ? -1 : a > b ? 1 : 0),
  );
}

/** The state after a task of `tenant` started. */
export function recordStart(state: FairShareState, tenant: string, policy: FairSharePolicy): FairShareState {
  const start = passOf(state, tenant);
  const seq = state.seq + 1;
  return {
    pass: { ...state.pass, [tenant]: start + 1 / weightOf(policy, tenant) },
    lastServed: { ...state.lastServed, [tenant]: seq },
    virtualTime: start,
    seq,
  };
}

const TENANT_KEY = /^(\*|[a-z0-9][a-z0-9_-]{0,62})$/;

/** `AUTODEV_FAIR_SHARES`: JSON weights by tenant, e.g. `{"acme": 3, "*": 1}`; empty: equal shares. */
export function parseFairShares(text: string, variable = 'AUTODEV_FAIR_SHARES'): Record<string, number> {
  if (!text.trim()) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${variable}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = z
    .record(z.string().regex(TENANT_KEY, 'a tenant name or *'), z.number().positive().max(1000))
    .safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `${variable}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
