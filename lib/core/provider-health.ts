import { type ProviderErrorClass, VersionConflictError } from './errors.js';
import type { FairShareState } from './fair-share.js';

/**
 * Per-provider health shared by every dispatcher through the store: a circuit breaker and a
 * token bucket. Pure functions here; `admitProvider` and `recordProviderResult` apply them with
 * conditional writes through the ProviderStateStore port.
 */
export interface BreakerPolicy {
  /** Classified failures within `windowMs` that open the breaker. */
  failureThreshold: number;
  windowMs: number;
  /** How long the breaker stays open before it lets one probe through. */
  openMs: number;
}

export interface RatePolicy {
  /** Attempts started per second, on average. */
  ratePerSecond: number;
  /** Attempts that may start at once after a quiet period. */
  burst: number;
}

export type BreakerMode = 'closed' | 'open' | 'half_open';

export interface ProviderState {
  provider: string;
  version: number;
  breaker: {
    mode: BreakerMode;
    /** Times of recent classified failures (ms). */
    failures: number[];
    openedAt?: number;
    /** While half-open: when the probe was let through (one at a time). */
    probeAt?: number;
  };
  bucket: { tokens: number; updatedAt: number };
  /** Recent outcomes (true = success), newest last, for success rates. */
  recent: boolean[];
  /** Attempts holding a concurrency slot (provider-slots.ts): `<task id>#<attempt>` → when the slot lapses (ms). */
  slots?: Record<string, number>;
  /**
   * Slots held for parked tasks that were woken to take them (provider-slots.ts `handOffSlots`):
   * `<task id>` → when the reservation lapses (ms).
   */
  reserved?: Record<string, number>;
  /** The tenants' turns among this provider's parked tasks (fair-share.ts). */
  fair?: FairShareState;
}

export const DEFAULT_BREAKER: BreakerPolicy = { failureThreshold: 5, windowMs: 60_000, openMs: 60_000 };
export const DEFAULT_RATE: RatePolicy = { ratePerSecond: 1, burst: 10 };
const RECENT = 50;

/** Failures that say something about the provider rather than the task. */
export const BREAKER_CLASSES: readonly ProviderErrorClass[] = [
  'rate_limit',
  'overloaded',
  'auth',
  'timeout',
  'crash',
];

/**
 * Whether an attempt's end says anything about its provider. A `workspace` fault (the repository
 * is missing, access denied, the disk full) happened before or after the provider's part: it
 * neither counts against the breaker nor uses up the provider's rate. Both engines decide through
 * `recordResult`, so this is the one place the rule lives.
 */
export function concernsProvider(ok: boolean, errorClass: ProviderErrorClass | undefined): boolean {
  return ok || errorClass !== 'workspace';
}

export function initialProviderState(provider: string, rate: RatePolicy, now: number): ProviderState {
  return {
    provider,
    version: 0,
    breaker: { mode: 'closed', failures: [] },
    bucket: { tokens: rate.burst, updatedAt: now },
    recent: [],
  };
}

export type Admission =
  | { ok: true }
  | { ok: false; reason: 'breaker_open' | 'rate_limited'; retryAfterMs: number };

/**
 * The breaker's say on a start now: refused while open (until `openMs` after it opened) or while
 * a half-open probe is out; otherwise the breaker as it is once the start is taken (an open one
 * past its time turns half-open).
 */
export function breakerGate(
  s: ProviderState,
  now: number,
  breaker: BreakerPolicy,
): { retryAfterMs: number } | { breaker: ProviderState['breaker'] } {
  const b = { ...s.breaker };
  if (b.mode === 'open') {
    const reopen = (b.openedAt ?? now) + breaker.openMs;
    if (now < reopen) return { retryAfterMs: reopen - now };
    b.mode = 'half_open';
    b.probeAt = undefined;
  }
  // one probe at a time; a probe that never reported back is replaced after openMs
  if (b.mode === 'half_open' && b.probeAt !== undefined && now - b.probeAt < breaker.openMs)
    return { retryAfterMs: b.probeAt + breaker.openMs - now };
  return { breaker: b };
}

/** Whether an attempt may start on this provider now, and the state after taking the decision. */
export function admit(
  s: ProviderState,
  now: number,
  breaker: BreakerPolicy,
  rate: RatePolicy,
): { admission: Admission; next: ProviderState } {
  const gate = breakerGate(s, now, breaker);
  if ('retryAfterMs' in gate)
    return { admission: { ok: false, reason: 'breaker_open', retryAfterMs: gate.retryAfterMs }, next: s };
  const b = gate.breaker;
  const elapsed = Math.max(0, now - s.bucket.updatedAt) / 1000;
  const tokens = Math.min(rate.burst, s.bucket.tokens + elapsed * rate.ratePerSecond);
  if (tokens < 1) {
    const wait = Math.ceil(((1 - tokens) / rate.ratePerSecond) * 1000);
    return {
      admission: { ok: false, reason: 'rate_limited', retryAfterMs: wait },
      next: { ...s, breaker: b, bucket: { tokens, updatedAt: now }, version: s.version + 1 },
    };
  }
  if (b.mode === 'half_open') b.probeAt = now;
  return {
    admission: { ok: true },
    next: { ...s, breaker: b, bucket: { tokens: tokens - 1, updatedAt: now }, version: s.version + 1 },
  };
}

/** The state after an attempt on this provider ended. */
export function recordResult(
  s: ProviderState,
  ok: boolean,
  errorClass: ProviderErrorClass | undefined,
  now: number,
  policy: BreakerPolicy,
): ProviderState {
  if (!concernsProvider(ok, errorClass)) {
    // the admission's token goes back, and a half-open probe that never reached the provider is freed
    const bucket = { ...s.bucket, tokens: s.bucket.tokens + 1 };
    const breaker = s.breaker.mode === 'half_open' ? { ...s.breaker, probeAt: undefined } : s.breaker;
    return { ...s, bucket, breaker, version: s.version + 1 };
  }
  const recent = [...s.recent, ok].slice(-RECENT);
  const counts = !ok && errorClass !== undefined && BREAKER_CLASSES.includes(errorClass);
  const b = { ...s.breaker };
  if (ok) {
    return { ...s, recent, breaker: { mode: 'closed', failures: [] }, version: s.version + 1 };
  }
  if (!counts) return { ...s, recent, version: s.version + 1 };
  if (b.mode === 'half_open') {
    return {
      ...s,
      recent,
      breaker: { mode: 'open', failures: [now], openedAt: now },
      version: s.version + 1,
    };
  }
  const failures = [...b.failures.filter((t) => now - t < policy.windowMs), now];
  if (b.mode === 'closed' && failures.length >= policy.failureThreshold) {
    return { ...s, recent, breaker: { mode: 'open', failures, openedAt: now }, version: s.version + 1 };
  }
  return { ...s, recent, breaker: { ...b, failures }, version: s.version + 1 };
}

/** The breaker's mode as seen now (an open breaker past its cool-down reads as half-open). */
export function breakerMode(s: ProviderState, now: number, policy: BreakerPolicy): BreakerMode {
  if (s.breaker.mode === 'open' && now >= (s.breaker.openedAt ?? 0) + policy.openMs) return 'half_open';
  return s.breaker.mode;
}

export function successRate(s: ProviderState): number | undefined {
  return s.recent.length ? s.recent.filter(Boolean).length / s.recent.length : undefined;
}

/** Where provider state lives: conditional writes on `version`, shared by every dispatcher. */
export interface ProviderStateStore {
  getProviderState(provider: string): Promise<ProviderState | undefined>;
  /** Creates (expectedVersion -1) or replaces the state if the stored version is expectedVersion. */
  putProviderState(state: ProviderState, expectedVersion: number): Promise<void>;
  listProviderStates(): Promise<ProviderState[]>;
}

export async function updateProviderState<T>(
  store: ProviderStateStore,
  provider: string,
  rate: RatePolicy,
  now: number,
  fn: (s: ProviderState) => { next: ProviderState; result: T },
): Promise<T> {
  for (let i = 0; i < 50; i++) {
    const current = (await store.getProviderState(provider)) ?? {
      ...initialProviderState(provider, rate, now),
      version: -1,
    };
    const { next, result } = fn(current);
    if (next === current) return result;
    try {
      await store.putProviderState({ ...next, version: current.version + 1 }, current.version);
      return result;
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  }
  throw new VersionConflictError(`Provider state of ${provider} is changing too fast.`);
}

export function admitProvider(
  store: ProviderStateStore,
  provider: string,
  now: number,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
  rate: RatePolicy = DEFAULT_RATE,
): Promise<Admission> {
  return updateProviderState(store, provider, rate, now, (s) => {
    const { admission, next } = admit(s, now, breaker, rate);
    return { next, result: admission };
  });
}

export function recordProviderResult(
  store: ProviderStateStore,
  provider: string,
  ok: boolean,
  errorClass: ProviderErrorClass | undefined,
  now: number,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
  rate: RatePolicy = DEFAULT_RATE,
): Promise<ProviderState> {
  return updateProviderState(store, provider, rate, now, (s) => {
    const next = recordResult(s, ok, errorClass, now, breaker);
    return { next, result: next };
  });
}

/**
 * A 429/529/503 seen on the wire while an attempt still runs (the model gateway): it counts against
 * the breaker at once, and when the vendor said when its limit resets, the token bucket stays empty
 * until then, so no attempt is admitted on a window known to be closed. Each one is also a failed
 * outcome in `recent`, as the provider's answer it is.
 */
export function rateLimitSeen(
  s: ProviderState,
  resetAt: number | undefined,
  now: number,
  breaker: BreakerPolicy,
  rate: RatePolicy,
): ProviderState {
  const b = { ...s.breaker };
  const failures = [...b.failures.filter((t) => now - t < breaker.windowMs), now];
  const opens =
    b.mode === 'half_open' || (b.mode === 'closed' && failures.length >= breaker.failureThreshold);
  const next: ProviderState = {
    ...s,
    recent: [...s.recent, false].slice(-RECENT),
    breaker: opens ? { mode: 'open', failures, openedAt: now } : { ...b, failures },
    version: s.version + 1,
  };
  if (resetAt !== undefined && resetAt > now) {
    const elapsed = Math.max(0, now - s.bucket.updatedAt) / 1000;
    const tokens = Math.min(rate.burst, s.bucket.tokens + elapsed * rate.ratePerSecond);
    // refilled at ratePerSecond, the bucket holds one token again exactly at the reset
    const empty = 1 - ((resetAt - now) / 1000) * rate.ratePerSecond;
    next.bucket = { tokens: Math.min(tokens, empty), updatedAt: now };
  }
  return next;
}

/** Applies `rateLimitSeen` through the store (conditional writes), as soon as the gateway sees it. */
export function recordRateLimit(
  store: ProviderStateStore,
  provider: string,
  resetAt: number | undefined,
  now: number,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
  rate: RatePolicy = DEFAULT_RATE,
): Promise<ProviderState> {
  return updateProviderState(store, provider, rate, now, (s) => {
    const next = rateLimitSeen(s, resetAt, now, breaker, rate);
    return { next, result: next };
  });
}
