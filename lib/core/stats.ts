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
  const pairs = new Map<string, ProviderRoleStats & { ended: number; totalMs: number }>();
  for (const t of input.window) {
    const day = days.get(t.createdAt.slice(0, 10));
    if (!day) continue;
    day.submitted++;
    if (t.status === 'succeeded' || t.status === 'failed' || t.status === 'cancelled') day[t.status]++;
    day.costUsd += t.usage.costUsd;
    if (isTerminal(t.status) && t.durationMs !== undefined) {
      durations.set(day.day, [...(durations.get(day.day) ?? []), t.durationMs]);
    }
    for (const a of t.attempts) {
      const key = `${a.provider}\u0000${t.role}`;
      const p = pairs.get(key) ?? {
        provider: a.provider,
        role: t.role,
        attempts: 0,
        succeeded: 0,
        successRate: null,
        avgMs: null,
        costUsd: 0,
        ended: 0,
        totalMs: 0,
      };
      p.attempts++;
      if (a.outcome === 'succeeded') p.succeeded++;
      const ms = attemptMs(a);
      if (ms !== undefined && a.outcome !== 'running') {
        p.ended++;
        p.totalMs += ms;
      }
      p.costUsd += a.usage?.costUsd ?? 0;
      pairs.set(key, p);
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
    providers: [...pairs.values()]
      .map(({ ended, totalMs, ...p }) => ({
        ...p,
        successRate: rate(p.succeeded, ended),
        avgMs: ended > 0 ? Math.round(totalMs / ended) : null,
      }))
      .sort((a, b) => a.provider.localeCompare(b.provider) || a.role.localeCompare(b.role)),
    queue: { counts: input.counts, oldestQueuedAt: oldest, runningByRole, runningByProvider },
    basis: input.basis,
  };
}
