import { ValidationError } from './errors.js';
import { PROVIDER_SPECIFIC } from './lifecycle.js';
import type { BreakerMode } from './provider-health.js';
import type { ProviderFigures, TaskStatsSource } from './stats.js';

/**
 * Routing that learns: with `provider: "auto"` each attempt's provider is chosen per role from the
 * recorded outcomes of the tenant's recent attempts (success rate, median duration and median cost
 * of the successful ones) and the providers' circuit breakers, with a small share of choices left
 * to exploration so that a provider out of favour keeps being measured. Pure: the figures, the
 * breaker modes and the random source come in; the order to try and the reason go out. Both
 * engines reach it through the shared prepare step (workflow-engine.ts).
 */

import { AUTO_PROVIDER } from './schemas.js';

export { AUTO_PROVIDER };

export interface RoutingPolicy {
  /** Share of choices (0 to 1) that go to another eligible provider than the best-scored one. */
  exploration: number;
  /** Days of recorded outcomes the figures cover. */
  windowDays: number;
  /** Weight of the duration penalty: a provider twice as slow as the fastest loses half of it. */
  durationWeight: number;
  /** Weight of the cost penalty, likewise against the cheapest. */
  costWeight: number;
  /** Taken off the score of a provider whose breaker is half-open (it admits one probe at a time). */
  halfOpenPenalty: number;
}

export const DEFAULT_ROUTING_POLICY: RoutingPolicy = {
  exploration: 0.1,
  windowDays: 7,
  durationWeight: 0.15,
  costWeight: 0.15,
  halfOpenPenalty: 0.25,
};

/** The figures routing reads for one provider in one role (a subset of ProviderFigures). */
export type RouteFigures = Pick<
  ProviderFigures,
  'provider' | 'succeeded' | 'failed' | 'medianMs' | 'medianCostUsd'
>;

/** What the attempt records of its routing (`attempts[].routing`). */
export interface AttemptRouting {
  /** The provider the attempt runs on. */
  choice: string;
  /** Why, in a sentence. */
  reason: string;
  /** Each candidate's score (0 to 1, higher is better); null: its circuit breaker is open. */
  scores: Record<string, number | null>;
  /** The choice was an exploration draw, not the best score. */
  explored: boolean;
}

export interface RouteInput {
  /** Providers that may run the attempt (configured, available), in the role's order. */
  candidates: readonly string[];
  figures: readonly RouteFigures[];
  /** Each candidate's breaker as seen now; absent: closed. */
  breakers: Readonly<Record<string, BreakerMode>>;
  policy: RoutingPolicy;
  /** Uniform in [0, 1): the exploration draws (a seeded source in tests). */
  random: () => number;
}

export interface Route {
  /** Providers to try in this order: the choice first, then the others by score, open breakers last. */
  order: string[];
  routing: AttemptRouting;
}

/** A provider's success estimate: (succeeded + 1) / (outcomes + 2), so one outcome is not a verdict. */
export function successEstimate(f: Pick<RouteFigures, 'succeeded' | 'failed'> | undefined): number {
  const ok = f?.succeeded ?? 0;
  return (ok + 1) / (ok + (f?.failed ?? 0) + 2);
}

const penalty = (value: number | null | undefined, best: number, weight: number): number =>
  value === null || value === undefined || value <= 0 ? 0 : weight * (1 - best / value);

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Each candidate's score: success estimate, less the duration and cost penalties; null when its breaker is open. */
export function scoreCandidates(
  input: Omit<RouteInput, 'random'>,
): { provider: string; score: number | null; figures?: RouteFigures }[] {
  const byProvider = new Map(input.figures.map((f) => [f.provider, f]));
  const known = input.candidates.map((p) => byProvider.get(p)).filter((f) => f !== undefined);
  const positive = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null && x > 0);
  const fastest = Math.min(...positive(known.map((f) => f.medianMs)));
  const cheapest = Math.min(...positive(known.map((f) => f.medianCostUsd)));
  return input.candidates.map((provider) => {
    const f = byProvider.get(provider);
    const mode = input.breakers[provider] ?? 'closed';
    if (mode === 'open') return { provider, score: null, figures: f };
    const raw =
      successEstimate(f) -
      penalty(f?.medianMs, fastest, input.policy.durationWeight) -
      penalty(f?.medianCostUsd, cheapest, input.policy.costWeight) -
      (mode === 'half_open' ? input.policy.halfOpenPenalty : 0);
    return { provider, score: round3(Math.max(0, raw)), figures: f };
  });
}

function describeFigures(f: RouteFigures | undefined): string {
  const n = (f?.succeeded ?? 0) + (f?.failed ?? 0);
  if (!f || n === 0) return 'no outcomes yet';
  const parts = [`${f.succeeded}/${n} succeeded`];
  if (f.medianMs !== null) parts.push(`median ${(f.medianMs / 1000).toFixed(1)} s`);
  if (f.medianCostUsd !== null) parts.push(`median $${f.medianCostUsd.toFixed(4)}`);
  return parts.join(', ');
}

/**
 * The route for one attempt. A provider whose breaker is open is never chosen while another
 * candidate's is not; when every candidate's is open the best-scored comes first anyway (admission
 * then makes the task wait for the first breaker to let a probe through). With probability
 * `policy.exploration`, and when at least two are eligible, the choice is drawn uniformly among
 * the eligible ones other than the best. Ties keep the role's order.
 */
export function route(input: RouteInput): Route {
  const scored = scoreCandidates(input);
  const scores = Object.fromEntries(scored.map((s) => [s.provider, s.score]));
  const eligible = scored
    .filter((s): s is typeof s & { score: number } => s.score !== null)
    .sort((a, b) => b.score - a.score); // stable: ties keep the role's order
  const closed = scored.filter((s) => s.score === null);
  if (eligible.length === 0) {
    const first = scored[0]?.provider ?? '';
    return {
      order: scored.map((s) => s.provider),
      routing: {
        choice: first,
        reason: `every candidate's circuit breaker is open; ${first} (first in the role's order) is tried when its breaker lets a probe through`,
        scores,
        explored: false,
      },
    };
  }
  const best = eligible[0] as (typeof eligible)[number];
  let chosen = best;
  let explored = false;
  if (eligible.length > 1 && input.policy.exploration > 0 && input.random() < input.policy.exploration) {
    const others = eligible.slice(1);
    chosen = others[Math.min(others.length - 1, Math.floor(input.random() * others.length))] ?? best;
    explored = true;
  }
  const order = [chosen, ...eligible.filter((s) => s !== chosen), ...closed].map((s) => s.provider);
  const noData = scored.every((s) => (s.figures?.succeeded ?? 0) + (s.figures?.failed ?? 0) === 0);
  const open = closed.map((s) => s.provider);
  const openNote = open.length > 0 ? `; circuit breaker open: ${open.join(', ')}` : '';
  let reason: string;
  if (explored) {
    reason = `exploration (${Math.round(input.policy.exploration * 100)}% of choices): ${chosen.provider} scores ${chosen.score} (${describeFigures(chosen.figures)}), below ${best.provider}'s ${best.score}${openNote}`;
  } else if (noData) {
    reason = `no outcomes recorded for this role yet: ${chosen.provider}, first in the role's order${openNote}`;
  } else {
    const runnerUp = eligible[1];
    const versus = runnerUp
      ? `; next ${runnerUp.provider} ${runnerUp.score} (${describeFigures(runnerUp.figures)})`
      : '';
    reason = `best score ${chosen.score}: ${describeFigures(chosen.figures)}${versus}${openNote}`;
  }
  return { order, routing: { choice: chosen.provider, reason, scores, explored } };
}

/**
 * Providers an auto-routed task leaves out of its next attempt: those that failed it in this run
 * with a failure that belongs to the provider (credentials, rate limit, capacity), as failover
 * would. None left out when that would leave no candidate.
 */
export function routingCandidates(
  available: readonly string[],
  attemptsThisRun: readonly { provider: string; outcome: string; errorClass?: string }[],
): string[] {
  const failed = new Set(
    attemptsThisRun
      .filter(
        (a) =>
          a.outcome === 'failed' &&
          PROVIDER_SPECIFIC.includes(a.errorClass as (typeof PROVIDER_SPECIFIC)[number]),
      )
      .map((a) => a.provider),
  );
  const rest = available.filter((p) => !failed.has(p));
  return rest.length > 0 ? rest : [...available];
}

/**
 * The routing record once admission has spoken: the provider admitted may not be the one routing
 * put first (its rate limit or its concurrency said no), and the reason says so.
 */
export function admittedRouting(
  routing: AttemptRouting,
  admitted: string,
  skipped: readonly string[],
): AttemptRouting {
  if (admitted === routing.choice) return routing;
  const why = skipped.length > 0 ? skipped.join(', ') : `${routing.choice} did not admit work`;
  return {
    ...routing,
    choice: admitted,
    explored: false,
    reason: `${admitted} (score ${routing.scores[admitted] ?? 'n/a'}) as ${why}; routing had said: ${routing.reason}`,
  };
}

/** `pin: true` keeps a task to the provider it names: it needs one, and not `auto` (400 naming `field`). */
export function checkPin(provider: string | undefined, pin: boolean | undefined, field = 'pin'): void {
  if (!pin) return;
  if (provider === AUTO_PROVIDER) {
    throw new ValidationError('pin cannot be used with provider "auto": routing chooses the provider.', [
      { field, message: 'not with provider "auto"' },
    ]);
  }
  if (!provider) {
    throw new ValidationError('pin needs a provider to keep to.', [{ field, message: 'needs a provider' }]);
  }
}

/** Reads the exploration share of a setting (AUTODEV_ROUTING_EXPLORATION, ROUTING_EXPLORATION). */
export function parseExploration(value: string | undefined, field: string): number {
  if (value === undefined || value.trim() === '') return DEFAULT_ROUTING_POLICY.exploration;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new ValidationError(`${field} must be a number from 0 to 1 (a share of routing choices).`, [
      { field, message: 'out of range' },
    ]);
  }
  return n;
}

/** Where routing reads a role's figures: the tenant's recent attempts, aggregated by the store. */
export type RouteFiguresSource = (tenant: string, role: string, now: Date) => Promise<RouteFigures[]>;

/** The newest tasks of the window that routing reads per tenant and role (the rest are older news). */
export const ROUTING_TASK_LIMIT = 500;

/** Routing's figures from a store's provider stats: the window's newest tasks of the role, kept `cacheMs`. */
export function figuresFrom(
  stats: Pick<TaskStatsSource, 'providerStats'>,
  windowDays: number,
  cacheMs: number,
): RouteFiguresSource {
  return cachedFigures(
    (tenant, role, now) =>
      stats.providerStats(tenant, { days: windowDays, role, limit: ROUTING_TASK_LIMIT }, now),
    cacheMs,
  );
}

/**
 * Keeps each tenant's and role's figures for `ttlMs`, so that a burst of auto-routed tasks asks
 * the store once. Expired entries are dropped as new ones come.
 */
export function cachedFigures(source: RouteFiguresSource, ttlMs: number): RouteFiguresSource {
  if (ttlMs <= 0) return source;
  const cache = new Map<string, { at: number; figures: Promise<RouteFigures[]> }>();
  return (tenant, role, now) => {
    const key = `${tenant}\u0000${role}`;
    const hit = cache.get(key);
    if (hit && now.getTime() - hit.at < ttlMs) return hit.figures;
    if (cache.size >= 1000) {
      for (const [k, v] of cache) if (now.getTime() - v.at >= ttlMs) cache.delete(k);
    }
    const figures = source(tenant, role, now);
    cache.set(key, { at: now.getTime(), figures });
    // a failed read is not kept
    figures.catch(() => cache.delete(key));
    return figures;
  };
}

/** A seeded uniform source in [0, 1) (mulberry32), for reproducible routing in tests and benches. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
