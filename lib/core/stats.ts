import { ValidationError } from './errors.js';
import { isTerminal, TASK_STATUSES, type Task, type TaskStatus } from './schemas.js';

/** One day of a tenant's tasks, by the day they were submitted (UTC). */
export interface DayStats {
  /** `YYYY-MM-DD` (UTC). */
  day: string;
  submitted: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  /** succeeded / (succeeded + failed); null before any of them ended. */
  successRate: number | null;
  costUsd: number;
  /** Durations of the tasks that ended (ms): median and 95th percentile (nearest rank); null: none ended. */
  p50Ms: number | null;
  p95Ms: number | null;
}

/** One provider's attempts for one agent role over the window. */
export interface ProviderRoleStats {
  provider: string;
  role: string;
  attempts: number;
  succeeded: number;
  /** succeeded / attempts that ended; null while none ended. */
  successRate: number | null;
  /** Mean time of the attempts that ended (ms); null while none ended. */
  avgMs: number | null;
  costUsd: number;
}

/** One provider's figures for one role as routing reads them (`providerStats`, `GET /v1/providers/stats`). */
export interface ProviderFigures extends ProviderRoleStats {
  /** Attempts that failed for a reason of the provider's (not a workspace fault): what routing counts against it. */
  failed: number;
  /** Median time and cost of the successful attempts (nearest rank); null while none succeeded. */
  medianMs: number | null;
  medianCostUsd: number | null;
}

/** `providerStats`: one tenant's figures per provider and role over the window (routing, `GET /v1/providers/stats`). */
export interface ProviderStatsQuery {
  /** Days of attempts, today included (1 to MAX_STATS_DAYS). */
  days: number;
  /** Only this agent role. */
  role?: string;
  /** Only the newest tasks of the window, at most this many (routing keeps its read small). */
  limit?: number;
}

/** What waits and what runs now. */
export interface QueueStats {
  /** Tasks of each status, all time. */
  counts: Record<TaskStatus, number>;
  /** When the oldest task still queued was submitted; null when none is. */
  oldestQueuedAt: string | null;
  runningByRole: Record<string, number>;
  runningByProvider: Record<string, number>;
}

/** `GET /v1/stats`: one tenant's figures. */
export interface TaskStats {
  tenant: string;
  /** The first day of the series (UTC, `YYYY-MM-DD`); the series ends today. */
  since: string;
  days: DayStats[];
  providers: ProviderRoleStats[];
  queue: QueueStats;
  /**
   * How the figures were made: `sql` (aggregates over every task of the window), or `scan` (from at
   * most `scanLimit` of the window's newest tasks; `truncated` says whether the window held more).
   */
  basis: { kind: 'sql' } | { kind: 'scan'; scanned: number; scanLimit: number; truncated: boolean };
}

export interface StatsQuery {
  /** Days of series, today included: 0 (the queue only) to MAX_STATS_DAYS. */
  days: number;
}

export const DEFAULT_STATS_DAYS = 14;
export const MAX_STATS_DAYS = 90;

/** A source of one tenant's figures (each store computes them its own way). */
export interface TaskStatsSource {
  stats(tenant: string, query: StatsQuery, now: Date): Promise<TaskStats>;
  providerStats(tenant: string, query: ProviderStatsQuery, now: Date): Promise<ProviderFigures[]>;
}

/** The query of `GET /v1/providers/stats` (`days`, default 7; `role`). */
export function parseProviderStatsQuery(q: Record<string, string | undefined>): ProviderStatsQuery {
  const days = q.days === undefined ? 7 : Number(q.days);
  if (!Number.isInteger(days) || days < 1 || days > MAX_STATS_DAYS) {
    throw new ValidationError(`days must be an integer from 1 to ${MAX_STATS_DAYS}.`, [
      { field: 'days', message: 'out of range' },
    ]);
  }
  if (q.role !== undefined && (q.role.length === 0 || q.role.length > 64)) {
    throw new ValidationError('role must be 1 to 64 characters.', [{ field: 'role', message: 'bad length' }]);
  }
  return { days, ...(q.role ? { role: q.role } : {}) };
}

export function parseStatsQuery(q: Record<string, string | undefined>): StatsQuery {
  const days = q.days === undefined ? DEFAULT_STATS_DAYS : Number(q.days);
  if (!Number.isInteger(days) || days < 0 || days > MAX_STATS_DAYS) {
    throw new ValidationError(`days must be an integer from 0 to ${MAX_STATS_DAYS}.`, [
      { field: 'days', message: 'out of range' },
    ]);
  }
  return { days };
}

/** The first instant of the window: midnight UTC, `days - 1` days before `now`'s day. */
export function windowStart(now: Date, days: number): Date {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  start.setUTCDate(start.getUTCDate() - Math.max(0, days - 1));
  return start;
}

/** The window's days, oldest first, as `YYYY-MM-DD`. */
export function dayKeys(now: Date, days: number): string[] {
  const out: string[] = [];
  const start = windowStart(now, days);
  for (let i = 0; i < days; i++) {
    out.push(new Date(start.getTime() + i * 86_400_000).toISOString().slice(0, 10));
  }
  return out;
}

/** The value at a nearest-rank percentile of sorted values; null for none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export const rate = (ok: number, ended: number): number | null => (ended > 0 ? ok / ended : null);

export function emptyDay(day: string): DayStats {
  return {
    day,
    submitted: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    successRate: null,
    costUsd: 0,
    p50Ms: null,
    p95Ms: null,
  };
}

export function zeroCounts(): Record<TaskStatus, number> {
  return Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
}

const attemptMs = (a: { startedAt: string; endedAt?: string }): number | undefined =>
  a.endedAt ? Math.max(0, Date.parse(a.endedAt) - Date.parse(a.startedAt)) : undefined;

/**
 * The figures computed from tasks in memory, for a store without aggregates (DynamoDB): `window`
 * holds the tenant's tasks submitted in the window, `current` those queued or running now.
 */
export function computeStats(input: {
  tenant: string;
  now: Date;
  query: StatsQuery;
  window: readonly Task[];
  counts: Record<TaskStatus, number>;
  current: readonly Task[];
  basis: TaskStats['basis'];
}): TaskStats {
  const { now, query } = input;
  const days = new Map(dayKeys(now, query.days).map((d) => [d, emptyDay(d)]));
  const durations = new Map<string, number[]>();
  for (const t of input.window) {
    const day = days.get(t.createdAt.slice(0, 10));
    if (!day) continue;
    day.submitted++;
    if (t.status === 'succeeded' || t.status === 'failed' || t.status === 'cancelled') day[t.status]++;
    day.costUsd += t.usage.costUsd;
    if (isTerminal(t.status) && t.durationMs !== undefined) {
      durations.set(day.day, [...(durations.get(day.day) ?? []), t.durationMs]);
    }
  }
  for (const day of days.values()) {
    const sorted = (durations.get(day.day) ?? []).sort((a, b) => a - b);
    day.successRate = rate(day.succeeded, day.succeeded + day.failed);
    day.p50Ms = percentile(sorted, 50);
    day.p95Ms = percentile(sorted, 95);
  }
  const runningByRole: Record<string, number> = {};
  const runningByProvider: Record<string, number> = {};
  let oldest: string | null = null;
  for (const t of input.current) {
    if (t.status === 'running') {
      runningByRole[t.role] = (runningByRole[t.role] ?? 0) + 1;
      if (t.provider) runningByProvider[t.provider] = (runningByProvider[t.provider] ?? 0) + 1;
    } else if (t.status === 'queued' && (oldest === null || t.createdAt < oldest)) oldest = t.createdAt;
  }
  return {
    tenant: input.tenant,
    since: windowStart(now, query.days).toISOString().slice(0, 10),
    days: [...days.values()],
    providers: providerFigures(input.window.filter((t) => days.has(t.createdAt.slice(0, 10)))).map(
      ({ failed: _f, medianMs: _m, medianCostUsd: _c, ...p }) => p,
    ),
    queue: { counts: input.counts, oldestQueuedAt: oldest, runningByRole, runningByProvider },
    basis: input.basis,
  };
}

interface PairTotals {
  stats: ProviderFigures;
  ended: number;
  totalMs: number;
  okMs: number[];
  okCost: number[];
}

/**
 * Each provider's figures per role over `tasks` (their attempts), sorted by provider then role: what
 * a store without aggregates computes in memory, and what the SQL of the local store agrees with.
 */
export function providerFigures(tasks: readonly Pick<Task, 'role' | 'attempts'>[]): ProviderFigures[] {
  const pairs = new Map<string, PairTotals>();
  for (const t of tasks) {
    for (const a of t.attempts) {
      const key = `${a.provider}\u0000${t.role}`;
      let p = pairs.get(key);
      if (!p) {
        p = {
          stats: {
            provider: a.provider,
            role: t.role,
            attempts: 0,
            succeeded: 0,
            successRate: null,
            avgMs: null,
            costUsd: 0,
            failed: 0,
            medianMs: null,
            medianCostUsd: null,
          },
          ended: 0,
          totalMs: 0,
          okMs: [],
          okCost: [],
        };
        pairs.set(key, p);
      }
      p.stats.attempts++;
      if (a.outcome === 'failed' && a.errorClass !== 'workspace') p.stats.failed++;
      const ms = a.outcome !== 'running' ? attemptMs(a) : undefined;
      if (ms !== undefined) {
        p.ended++;
        p.totalMs += ms;
      }
      if (a.outcome === 'succeeded') {
        p.stats.succeeded++;
        if (ms !== undefined) {
          p.okMs.push(ms);
          p.okCost.push(a.usage?.costUsd ?? 0);
        }
      }
      p.stats.costUsd += a.usage?.costUsd ?? 0;
    }
  }
  const median = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      50,
    );
  return [...pairs.values()]
    .map(({ stats, ended, totalMs, okMs, okCost }) => ({
      ...stats,
      successRate: rate(stats.succeeded, ended),
      avgMs: ended > 0 ? Math.round(totalMs / ended) : null,
      medianMs: median(okMs),
      medianCostUsd: median(okCost),
    }))
    .sort((a, b) => a.provider.localeCompare(b.provider) || a.role.localeCompare(b.role));
}
