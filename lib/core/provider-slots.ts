import { z } from 'zod';
import { ConfigError, type ProviderErrorClass } from './errors.js';
import { EQUAL_SHARES, INITIAL_FAIR_SHARE_STATE, recordStart } from './fair-share.js';
import {
  type BreakerPolicy,
  breakerGate,
  DEFAULT_BREAKER,
  type ProviderState,
  type ProviderStateStore,
  type RatePolicy,
  recordResult,
  updateProviderState,
} from './provider-health.js';

/**
 * Admission by concurrency slot, for the distributed executor (Step Functions): each provider runs
 * at most `concurrency` attempts at once, starts them at `ratePerSecond` on average with bursts of
 * `burst`, and stops admitting while its circuit breaker is open. An attempt holds a slot from its
 * admission until its end is recorded; a slot whose attempt was lost lapses at the attempt's lease
 * expiry, so no slot leaks.
 *
 * A full provider is waited for, not polled: the executor parks and is woken when a slot frees.
 * The token bucket never makes anyone wait in a loop: an admitted attempt may take a token ahead of
 * time (the bucket goes below zero) and starts once that token is due. Because every such attempt
 * holds a slot, the bucket owes at most `concurrency` tokens, so the delay is at most
 * `concurrency / ratePerSecond` seconds.
 */
export interface ProviderLimits extends RatePolicy {
  /** Attempts running (or about to start) at once. */
  concurrency: number;
}

export const DEFAULT_PROVIDER_LIMITS: ProviderLimits = { ratePerSecond: 1, burst: 10, concurrency: 50 };

const LimitsSchema = z
  .object({
    ratePerSecond: z.number().positive().max(1000),
    burst: z.number().int().min(1).max(10_000),
    concurrency: z.number().int().min(1).max(100_000),
  })
  .partial()
  .strict();

/**
 * Limits per provider, `*` for every provider not named:
 * `{"*": {"concurrency": 50}, "claude": {"ratePerSecond": 2, "burst": 20, "concurrency": 100}}`.
 */
export const ProviderLimitsConfig = z.record(z.string().min(1), LimitsSchema);
export type ProviderLimitsConfig = z.infer<typeof ProviderLimitsConfig>;

/** Parses the limits configuration (JSON text); a bad value fails with a message naming it. */
export function parseProviderLimits(text: string | undefined, source: string): ProviderLimitsConfig {
  if (text === undefined || text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(`${source}: not JSON.`);
  }
  const parsed = ProviderLimitsConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${source}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** The limits of one provider: its own entry over `*` over the defaults. */
export function limitsFor(config: ProviderLimitsConfig, provider: string): ProviderLimits {
  return { ...DEFAULT_PROVIDER_LIMITS, ...config['*'], ...config[provider] };
}

/** The key of the slot an attempt holds. */
export const slotKey = (taskId: string, attempt: number): string => `${taskId}#${attempt}`;

/** The task whose attempt holds slot `key` (the inverse of `slotKey`). */
const taskOfSlot = (key: string): string => key.slice(0, key.lastIndexOf('#'));

/**
 * How long a slot stays reserved for a woken task that has not come to take it (its execution is
 * resumed within seconds; a lost wake-up frees the slot after this, and the reaper's next pass
 * hands it on).
 */
export const RESERVATION_MS = 120_000;

const live = (entries: Record<string, number> | undefined, now: number): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [key, until] of Object.entries(entries ?? {})) if (until > now) out[key] = until;
  return out;
};

/** Slots whose attempts still hold them at `now`. */
export function liveSlots(s: ProviderState, now: number): Record<string, number> {
  return live(s.slots, now);
}

/** Slots reserved for woken tasks, by task id, that have not lapsed at `now`. */
export function liveReservations(s: ProviderState, now: number): Record<string, number> {
  return live(s.reserved, now);
}

/** How many more attempts the provider admits now (0 when full); reserved slots are taken. */
export function freeSlots(s: ProviderState | undefined, now: number, limits: ProviderLimits): number {
  if (!s) return limits.concurrency;
  const taken = Object.keys(liveSlots(s, now)).length + Object.keys(liveReservations(s, now)).length;
  return Math.max(0, limits.concurrency - taken);
}

export type SlotAdmission =
  | { ok: true; delayMs: number }
  | { ok: false; reason: 'breaker_open'; retryAfterMs: number }
  /** Every slot is taken: wait until one frees (no retry time: a release wakes the waiter). */
  | { ok: false; reason: 'full' };

/**
 * Whether attempt `key` may start on this provider, and the state after the decision. The same key
 * admitted twice (a retried step) is admitted once: the second call changes nothing.
 */
export function admitSlot(
  s: ProviderState,
  key: string,
  now: number,
  holdUntil: number,
  limits: ProviderLimits,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
  tenant?: string,
): { admission: SlotAdmission; next: ProviderState } {
  const slots = liveSlots(s, now);
  if (slots[key] !== undefined) return { admission: { ok: true, delayMs: 0 }, next: s };
  const gate = breakerGate(s, now, breaker);
  if ('retryAfterMs' in gate)
    return { admission: { ok: false, reason: 'breaker_open', retryAfterMs: gate.retryAfterMs }, next: s };
  const b = gate.breaker;
  // a task woken for a slot takes the one held for it; any other task only a slot nobody holds
  const { [taskOfSlot(key)]: mine, ...reserved } = liveReservations(s, now);
  if (mine === undefined && freeSlots(s, now, limits) === 0)
    return { admission: { ok: false, reason: 'full' }, next: s };
  const elapsed = Math.max(0, now - s.bucket.updatedAt) / 1000;
  // a token taken ahead of time: the bucket may go below zero, by at most `concurrency`
  const tokens = Math.min(limits.burst, s.bucket.tokens + elapsed * limits.ratePerSecond) - 1;
  const delayMs = tokens < 0 ? Math.ceil((-tokens / limits.ratePerSecond) * 1000) : 0;
  if (b.mode === 'half_open') b.probeAt = now;
  // a start counts toward its tenant's turn among parked tasks (a reserved one counted when reserved)
  const fair =
    mine === undefined && tenant !== undefined
      ? recordStart(s.fair ?? INITIAL_FAIR_SHARE_STATE, tenant, EQUAL_SHARES)
      : s.fair;
  return {
    admission: { ok: true, delayMs },
    next: {
      ...s,
      ...(fair ? { fair } : {}),
      breaker: b,
      bucket: { tokens, updatedAt: now },
      slots: { ...slots, [key]: holdUntil },
      reserved,
      version: s.version + 1,
    },
  };
}

/** The state after attempt `key` gave its slot back without a result (it never started). */
export function releaseSlot(s: ProviderState, key: string, now: number): ProviderState {
  if (s.slots?.[key] === undefined) return s;
  const { [key]: _released, ...rest } = liveSlots(s, now);
  return { ...s, slots: rest, version: s.version + 1 };
}

/** The state after attempt `key` ended: its result goes to the breaker and its slot is freed. */
export function slotResult(
  s: ProviderState,
  key: string,
  ok: boolean,
  errorClass: ProviderErrorClass | undefined,
  now: number,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
): ProviderState {
  const next = recordResult(releaseSlot(s, key, now), ok, errorClass, now, breaker);
  return { ...next, version: s.version + 1 };
}

/** Takes a slot through the store (conditional writes on the provider's version). */
export function admitProviderSlot(
  store: ProviderStateStore,
  provider: string,
  key: string,
  now: number,
  holdUntil: number,
  limits: ProviderLimits,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
  tenant?: string,
): Promise<SlotAdmission> {
  return updateProviderState(store, provider, limits, now, (s) => {
    const { admission, next } = admitSlot(s, key, now, holdUntil, limits, breaker, tenant);
    return { next, result: admission };
  });
}

/**
 * An attempt on this provider ended: its result goes to the breaker (`recordResult`) and its slot is
 * freed, in one write. Returns the state after it.
 */
export function recordSlotResult(
  store: ProviderStateStore,
  provider: string,
  key: string,
  ok: boolean,
  errorClass: ProviderErrorClass | undefined,
  now: number,
  limits: ProviderLimits,
  breaker: BreakerPolicy = DEFAULT_BREAKER,
): Promise<ProviderState> {
  return updateProviderState(store, provider, limits, now, (s) => {
    const next = slotResult(s, key, ok, errorClass, now, breaker);
    return { next, result: next };
  });
}

/** An admitted attempt that never started (cancelled, or its worker could not start) frees its slot. */
export function releaseProviderSlot(
  store: ProviderStateStore,
  provider: string,
  key: string,
  now: number,
  limits: ProviderLimits,
): Promise<ProviderState> {
  return updateProviderState(store, provider, limits, now, (s) => {
    const next = releaseSlot(s, key, now);
    return { next, result: next };
  });
}
