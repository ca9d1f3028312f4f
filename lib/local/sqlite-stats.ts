import type Database from 'better-sqlite3';
import { taskIdFloor } from '../core/ids.js';
import type { TaskStatus } from '../core/schemas.js';
import {
  dayKeys,
  emptyDay,
  type ProviderFigures,
  type ProviderRoleStats,
  type ProviderStatsQuery,
  rate,
  type StatsQuery,
  type TaskStats,
  type TaskStatsSource,
  windowStart,
  zeroCounts,
} from '../core/stats.js';

/** The tenant's tasks submitted in the window: ids sort by creation time, `@floor` is the window's first. */
const WINDOW = `SELECT * FROM tasks WHERE tenant = @tenant AND id >= @floor`;

const SERIES = `
WITH w AS (${WINDOW})
SELECT substr(json_extract(data, '$.createdAt'), 1, 10) AS day,
       COUNT(*) AS submitted,
       SUM(status = 'succeeded') AS succeeded,
       SUM(status = 'failed') AS failed,
       SUM(status = 'cancelled') AS cancelled,
       TOTAL(json_extract(data, '$.usage.costUsd')) AS cost
FROM w GROUP BY day`;

/** Nearest-rank percentiles of the ended tasks' durations, per day, with window functions. */
const PERCENTILES = `
WITH d AS (
  SELECT substr(json_extract(data, '$.createdAt'), 1, 10) AS day, json_extract(data, '$.durationMs') AS ms
  FROM (${WINDOW})
  WHERE status IN ('succeeded', 'failed', 'cancelled') AND json_extract(data, '$.durationMs') IS NOT NULL
), r AS (
  SELECT day, ms, ROW_NUMBER() OVER (PARTITION BY day ORDER BY ms) AS rn, COUNT(*) OVER (PARTITION BY day) AS n
  FROM d
)
SELECT day,
       MIN(CASE WHEN rn >= (n * 50 + 99) / 100 THEN ms END) AS p50,
       MIN(CASE WHEN rn >= (n * 95 + 99) / 100 THEN ms END) AS p95
FROM r GROUP BY day`;

const PROVIDERS = `
WITH a AS (
  SELECT w.role AS role,
         json_extract(e.value, '$.provider') AS provider,
         json_extract(e.value, '$.outcome') AS outcome,
         json_extract(e.value, '$.startedAt') AS startedAt,
         json_extract(e.value, '$.endedAt') AS endedAt,
         json_extract(e.value, '$.usage.costUsd') AS cost
  FROM (${WINDOW}) AS w, json_each(w.data, '$.attempts') AS e
), x AS (
  SELECT *, (endedAt IS NOT NULL AND outcome <> 'running') AS ended FROM a
)
SELECT provider, role,
       COUNT(*) AS attempts,
       SUM(outcome = 'succeeded') AS succeeded,
       SUM(ended) AS ended,
       TOTAL(CASE WHEN ended THEN MAX(0, ROUND((unixepoch(endedAt, 'subsec') - unixepoch(startedAt, 'subsec')) * 1000)) END) AS totalMs,
       TOTAL(cost) AS cost
FROM x GROUP BY provider, role ORDER BY provider, role`;

/**
 * Routing's figures: each provider's attempts per role in `tasks` (the window's, maybe one role's,
 * maybe only the newest), with nearest-rank medians of the successful attempts' time and cost
 * (window functions). Failures of the workspace are not the provider's.
 */
const figuresQuery = (tasks: string) => `
WITH w AS (${tasks}), a AS (
  SELECT w.role AS role,
         json_extract(e.value, '$.provider') AS provider,
         json_extract(e.value, '$.outcome') AS outcome,
         json_extract(e.value, '$.errorClass') AS errorClass,
         json_extract(e.value, '$.startedAt') AS startedAt,
         json_extract(e.value, '$.endedAt') AS endedAt,
         json_extract(e.value, '$.usage.costUsd') AS cost
  FROM w, json_each(w.data, '$.attempts') AS e
), x AS MATERIALIZED (
  SELECT *, (endedAt IS NOT NULL AND outcome <> 'running') AS ended,
         CASE WHEN endedAt IS NOT NULL AND outcome <> 'running'
              THEN MAX(0, ROUND((unixepoch(endedAt, 'subsec') - unixepoch(startedAt, 'subsec')) * 1000)) END AS ms
  FROM a
), ok AS (
  SELECT provider, role, ms, IFNULL(cost, 0) AS cost,
         ROW_NUMBER() OVER (PARTITION BY provider, role ORDER BY ms) AS msRank,
         ROW_NUMBER() OVER (PARTITION BY provider, role ORDER BY IFNULL(cost, 0)) AS costRank,
         COUNT(*) OVER (PARTITION BY provider, role) AS n
  FROM x WHERE outcome = 'succeeded' AND ms IS NOT NULL
), med AS (
  SELECT provider, role,
         MIN(CASE WHEN msRank >= (n + 1) / 2 THEN ms END) AS medianMs,
         MIN(CASE WHEN costRank >= (n + 1) / 2 THEN cost END) AS medianCost
  FROM ok GROUP BY provider, role
)
SELECT x.provider AS provider, x.role AS role,
       COUNT(*) AS attempts,
       SUM(x.outcome = 'succeeded') AS succeeded,
       SUM(x.outcome = 'failed' AND IFNULL(x.errorClass, '') <> 'workspace') AS failed,
       SUM(x.ended) AS ended,
       TOTAL(CASE WHEN x.ended THEN x.ms END) AS totalMs,
       TOTAL(x.cost) AS cost,
       med.medianMs AS medianMs,
       med.medianCost AS medianCost
FROM x LEFT JOIN med ON med.provider = x.provider AND med.role = x.role
GROUP BY x.provider, x.role ORDER BY x.provider, x.role`;

const ROLE_TASKS = `SELECT role, data FROM tasks
  WHERE tenant = @tenant AND id >= @floor AND (@role IS NULL OR role = @role)`;
/** Every task of the window (no sort: the aggregates do not need one). */
const FIGURES = figuresQuery(ROLE_TASKS);
/** The window's newest `@limit` tasks. */
const NEWEST_FIGURES = figuresQuery(`${ROLE_TASKS} ORDER BY id DESC LIMIT @limit`);

interface FiguresArgs extends WindowArgs {
  role: string | null;
  limit?: number;
}

interface FiguresRow {
  provider: string;
  role: string;
  attempts: number;
  succeeded: number;
  failed: number;
  ended: number;
  totalMs: number;
  cost: number;
  medianMs: number | null;
  medianCost: number | null;
}

interface WindowArgs {
  tenant: string;
  floor: string;
}

interface SeriesRow {
  day: string;
  submitted: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  cost: number;
}

/**
 * `GET /v1/stats` on the local platform: SQL aggregates over the task store's file (the tenant's
 * index bounds the window; JSON fields are read with json_extract, percentiles with window functions).
 */
export class SqliteTaskStats implements TaskStatsSource {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      series: db.prepare<[WindowArgs], SeriesRow>(SERIES),
      percentiles: db.prepare<[WindowArgs], { day: string; p50: number; p95: number }>(PERCENTILES),
      providers: db.prepare<
        [WindowArgs],
        {
          provider: string;
          role: string;
          attempts: number;
          succeeded: number;
          ended: number;
          totalMs: number;
          cost: number;
        }
      >(PROVIDERS),
      figures: db.prepare<[FiguresArgs], FiguresRow>(FIGURES),
      newestFigures: db.prepare<[FiguresArgs], FiguresRow>(NEWEST_FIGURES),
      counts: db.prepare<[string], { status: string; n: number }>(
        'SELECT status, COUNT(*) AS n FROM tasks WHERE tenant = ? GROUP BY status',
      ),
      oldest: db.prepare<[string], { at: string | null }>(
        `SELECT MIN(json_extract(data, '$.createdAt')) AS at FROM tasks WHERE tenant = ? AND status = 'queued'`,
      ),
      running: db.prepare<[string], { role: string; provider: string | null; n: number }>(
        `SELECT role, json_extract(data, '$.provider') AS provider, COUNT(*) AS n
         FROM tasks WHERE tenant = ? AND status = 'running' GROUP BY 1, 2`,
      ),
    };
  }

  async stats(tenant: string, query: StatsQuery, now: Date): Promise<TaskStats> {
    const start = windowStart(now, query.days);
    const args: WindowArgs = { tenant, floor: taskIdFloor(start.getTime()) };
    const days = new Map(dayKeys(now, query.days).map((d) => [d, emptyDay(d)]));
    let providers: ProviderRoleStats[] = [];
    if (query.days > 0) {
      for (const r of this.stmts.series.all(args)) {
        const day = days.get(r.day);
        if (!day) continue;
        Object.assign(day, {
          submitted: r.submitted,
          succeeded: r.succeeded,
          failed: r.failed,
          cancelled: r.cancelled,
          successRate: rate(r.succeeded, r.succeeded + r.failed),
          costUsd: r.cost,
        });
      }
      for (const r of this.stmts.percentiles.all(args)) {
        const day = days.get(r.day);
        if (day) Object.assign(day, { p50Ms: r.p50, p95Ms: r.p95 });
      }
      providers = this.stmts.providers.all(args).map((r) => ({
        provider: r.provider,
        role: r.role,
        attempts: r.attempts,
        succeeded: r.succeeded,
        successRate: rate(r.succeeded, r.ended),
        avgMs: r.ended > 0 ? Math.round(r.totalMs / r.ended) : null,
        costUsd: r.cost,
      }));
    }
    const counts = zeroCounts();
    for (const r of this.stmts.counts.all(tenant)) counts[r.status as TaskStatus] = r.n;
    const runningByRole: Record<string, number> = {};
    const runningByProvider: Record<string, number> = {};
    for (const r of this.stmts.running.all(tenant)) {
      runningByRole[r.role] = (runningByRole[r.role] ?? 0) + r.n;
      if (r.provider) runningByProvider[r.provider] = (runningByProvider[r.provider] ?? 0) + r.n;
    }
    return {
      tenant,
      since: start.toISOString().slice(0, 10),
      days: [...days.values()],
      providers,
      queue: {
        counts,
        oldestQueuedAt: this.stmts.oldest.get(tenant)?.at ?? null,
        runningByRole,
        runningByProvider,
      },
      basis: { kind: 'sql' },
    };
  }

  /** Each provider's figures per role in the window (one role, the newest tasks only: see the queries). */
  async providerStats(tenant: string, query: ProviderStatsQuery, now: Date): Promise<ProviderFigures[]> {
    const args: FiguresArgs = {
      tenant,
      floor: taskIdFloor(windowStart(now, query.days).getTime()),
      role: query.role ?? null,
    };
    const rows =
      query.limit === undefined
        ? this.stmts.figures.all(args)
        : this.stmts.newestFigures.all({ ...args, limit: query.limit });
    return rows.map((r) => ({
      provider: r.provider,
      role: r.role,
      attempts: r.attempts,
      succeeded: r.succeeded,
      successRate: rate(r.succeeded, r.ended),
      avgMs: r.ended > 0 ? Math.round(r.totalMs / r.ended) : null,
      costUsd: r.cost,
      failed: r.failed,
      medianMs: r.medianMs,
      medianCostUsd: r.medianCost,
    }));
  }
}
