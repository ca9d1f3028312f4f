import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../../lib/core/errors.js';
import { initialProviderState } from '../../../lib/core/provider-health.js';
import {
  admitSlot,
  freeSlots,
  limitsFor,
  parseProviderLimits,
  releaseSlot,
} from '../../../lib/core/provider-slots.js';

const NOW = 1_000_000;
const limits = { ratePerSecond: 2, burst: 2, concurrency: 3 };

describe('admission by concurrency slot', () => {
  it('admits up to the concurrency, then says the provider is full (no retry time: a release wakes)', () => {
    let s = initialProviderState('claude', limits, NOW);
    const out: unknown[] = [];
    for (const key of ['a#1', 'b#1', 'c#1', 'd#1']) {
      const r = admitSlot(s, key, NOW, NOW + 60_000, limits);
      out.push(r.admission);
      s = r.next;
    }
    expect(out).toEqual([
      { ok: true, delayMs: 0 },
      { ok: true, delayMs: 0 },
      // the bucket (burst 2) is empty: the token is taken ahead of time, due in 1/rate s
      { ok: true, delayMs: 500 },
      { ok: false, reason: 'full' },
    ]);
    expect(freeSlots(s, NOW, limits)).toBe(0);
  });

  it('admits the same attempt twice only once (a retried step takes no second slot nor token)', () => {
    const first = admitSlot(initialProviderState('claude', limits, NOW), 'a#1', NOW, NOW + 60_000, limits);
    const again = admitSlot(first.next, 'a#1', NOW, NOW + 60_000, limits);
    expect(again.admission).toEqual({ ok: true, delayMs: 0 });
    expect(again.next).toBe(first.next);
  });

  it('frees a slot on release and when its hold lapses (a lost worker leaks nothing)', () => {
    let s = initialProviderState('claude', limits, NOW);
    for (const key of ['a#1', 'b#1', 'c#1']) s = admitSlot(s, key, NOW, NOW + 60_000, limits).next;
    expect(freeSlots(releaseSlot(s, 'b#1', NOW), NOW, limits)).toBe(1);
    expect(freeSlots(s, NOW + 60_001, limits)).toBe(3);
    expect(admitSlot(s, 'd#1', NOW + 60_001, NOW + 120_000, limits).admission.ok).toBe(true);
  });

  it('bounds the delay by concurrency / rate', () => {
    const wide = { ratePerSecond: 1, burst: 1, concurrency: 10 };
    let s = initialProviderState('claude', wide, NOW);
    let last = 0;
    for (let i = 0; i < 10; i++) {
      const r = admitSlot(s, `t${i}#1`, NOW, NOW + 60_000, wide);
      if (r.admission.ok) last = r.admission.delayMs;
      s = r.next;
    }
    expect(last).toBe(9000);
  });

  it('refuses with the breaker’s retry time while the breaker is open', () => {
    const s = {
      ...initialProviderState('claude', limits, NOW),
      breaker: { mode: 'open' as const, failures: [NOW], openedAt: NOW },
    };
    expect(admitSlot(s, 'a#1', NOW + 10_000, NOW + 60_000, limits).admission).toEqual({
      ok: false,
      reason: 'breaker_open',
      retryAfterMs: 50_000,
    });
  });
});

describe('provider limits configuration', () => {
  it('takes a provider’s own entry over `*` over the defaults', () => {
    const config = parseProviderLimits('{"*": {"concurrency": 20}, "claude": {"ratePerSecond": 5}}', 'x');
    expect(limitsFor(config, 'claude')).toEqual({ ratePerSecond: 5, burst: 10, concurrency: 20 });
    expect(limitsFor(config, 'codex')).toEqual({ ratePerSecond: 1, burst: 10, concurrency: 20 });
  });

  it.each([
    ['not json', /not JSON/],
    ['{"claude": {"concurrency": 0}}', /claude\.concurrency/],
    ['{"claude": {"burst": 1.5}}', /claude\.burst/],
    ['{"claude": {"speed": 1}}', /claude/],
  ])('refuses %s, naming the field', (text, message) => {
    expect(() => parseProviderLimits(text, 'PROVIDER_LIMITS')).toThrow(ConfigError);
    expect(() => parseProviderLimits(text, 'PROVIDER_LIMITS')).toThrow(message);
  });
});
