import { describe, expect, it } from '@jest/globals';
import {
  admit,
  admitProvider,
  breakerMode,
  initialProviderState,
  rateLimitSeen,
  recordProviderResult,
  recordResult,
  successRate,
} from '../../../lib/core/provider-health.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';

const breaker = { failureThreshold: 3, windowMs: 10_000, openMs: 5_000 };
const rate = { ratePerSecond: 2, burst: 2 };

describe('circuit breaker', () => {
  it('opens after N classified failures in the window, not for task-specific ones', () => {
    let s = initialProviderState('claude', rate, 0);
    s = recordResult(s, false, 'context_overflow', 1, breaker);
    s = recordResult(s, false, 'rate_limit', 2, breaker);
    s = recordResult(s, false, 'overloaded', 3, breaker);
    expect(s.breaker.mode).toBe('closed');
    s = recordResult(s, false, 'rate_limit', 4, breaker);
    expect(s.breaker.mode).toBe('open');
  });

  it('never counts a workspace fault: the breaker stays closed and the rate token goes back', () => {
    let s = initialProviderState('claude', rate, 0);
    for (let i = 0; i < 10; i++) {
      const a = admit(s, 1, breaker, rate);
      expect(a.admission.ok).toBe(true);
      s = recordResult(a.next, false, 'workspace', 1, breaker);
    }
    expect(s.breaker).toEqual({ mode: 'closed', failures: [] });
    expect(s.recent).toEqual([]);
    expect(s.bucket.tokens).toBeGreaterThanOrEqual(1);
  });

  it('frees a half-open probe that ended with a workspace fault, without closing or reopening', () => {
    let s = initialProviderState('claude', { ratePerSecond: 100, burst: 100 }, 0);
    for (let i = 0; i < 3; i++) s = recordResult(s, false, 'rate_limit', 100, breaker);
    const probe = admit(s, 6000, breaker, rate);
    expect(probe.admission.ok).toBe(true);
    s = recordResult(probe.next, false, 'workspace', 6001, breaker);
    expect(s.breaker.mode).toBe('half_open');
    expect(admit(s, 6002, breaker, rate).admission.ok).toBe(true);
  });

  it('forgets failures older than the window', () => {
    let s = initialProviderState('claude', rate, 0);
    s = recordResult(s, false, 'crash', 0, breaker);
    s = recordResult(s, false, 'crash', 1, breaker);
    s = recordResult(s, false, 'crash', 20_000, breaker);
    expect(s.breaker.mode).toBe('closed');
  });

  it('sends no work while open, one probe when half-open, and closes on its success', () => {
    let s = initialProviderState('claude', { ratePerSecond: 100, burst: 100 }, 0);
    for (let i = 0; i < 3; i++) s = recordResult(s, false, 'rate_limit', 100, breaker);
    expect(admit(s, 1000, breaker, rate).admission).toEqual({
      ok: false,
      reason: 'breaker_open',
      retryAfterMs: 4100,
    });
    expect(breakerMode(s, 5200, breaker)).toBe('half_open');
    const probe = admit(s, 5200, breaker, { ratePerSecond: 100, burst: 100 });
    expect(probe.admission.ok).toBe(true);
    const second = admit(probe.next, 5300, breaker, { ratePerSecond: 100, burst: 100 });
    expect(second.admission).toMatchObject({ ok: false, reason: 'breaker_open' });
    const closed = recordResult(probe.next, true, undefined, 5400, breaker);
    expect(closed.breaker.mode).toBe('closed');
    expect(admit(closed, 5500, breaker, { ratePerSecond: 100, burst: 100 }).admission.ok).toBe(true);
  });

  it('opens again when the probe fails', () => {
    let s = initialProviderState('claude', rate, 0);
    for (let i = 0; i < 3; i++) s = recordResult(s, false, 'overloaded', 0, breaker);
    const probe = admit(s, 6000, breaker, rate);
    const reopened = recordResult(probe.next, false, 'overloaded', 6100, breaker);
    expect(reopened.breaker).toMatchObject({ mode: 'open', openedAt: 6100 });
  });

  it('tracks a recent success rate', () => {
    let s = initialProviderState('claude', rate, 0);
    s = recordResult(s, true, undefined, 0, breaker);
    s = recordResult(s, false, 'auth', 0, breaker);
    expect(successRate(s)).toBe(0.5);
  });
});

describe('token bucket', () => {
  it('allows a burst, then the rate, and says how long to wait', () => {
    let s = initialProviderState('claude', rate, 0);
    const a = admit(s, 0, breaker, rate);
    const b = admit(a.next, 0, breaker, rate);
    const c = admit(b.next, 0, breaker, rate);
    expect([a.admission.ok, b.admission.ok, c.admission.ok]).toEqual([true, true, false]);
    expect(c.admission).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: 500 });
    s = b.next;
    expect(admit(s, 500, breaker, rate).admission.ok).toBe(true);
  });
});

describe('a rate limit seen on the wire (the model gateway)', () => {
  it('empties the token bucket until the reset the vendor named, then admits again', () => {
    // Arrange: a full bucket, and a 429 at t=1000 whose limit resets at t=61000
    const s = initialProviderState('claude', rate, 0);
    // Act
    const seen = rateLimitSeen(s, 61_000, 1_000, breaker, rate);
    // Assert: refused with the wait until the reset, admitted once it has passed
    expect(admit(seen, 1_000, breaker, rate).admission).toEqual({
      ok: false,
      reason: 'rate_limited',
      retryAfterMs: 60_000,
    });
    expect(admit(seen, 60_000, breaker, rate).admission.ok).toBe(false);
    expect(admit(seen, 61_000, breaker, rate).admission.ok).toBe(true);
  });

  it('counts against the breaker at once and opens it at the threshold', () => {
    let s = initialProviderState('claude', rate, 0);
    s = rateLimitSeen(s, undefined, 1, breaker, rate);
    s = rateLimitSeen(s, undefined, 2, breaker, rate);
    expect(s.breaker.mode).toBe('closed');
    expect(s.bucket.tokens).toBe(2); // no reset named: the bucket is left as it was
    s = rateLimitSeen(s, undefined, 3, breaker, rate);
    expect(s.breaker).toMatchObject({ mode: 'open', openedAt: 3 });
    expect(s.recent).toEqual([false, false, false]);
  });

  it('leaves a bucket emptier than the reset alone', () => {
    const s = { ...initialProviderState('claude', rate, 0), bucket: { tokens: -500, updatedAt: 0 } };
    expect(rateLimitSeen(s, 1_000, 0, breaker, rate).bucket.tokens).toBe(-500);
  });
});

describe('provider state shared through the store', () => {
  it('lets concurrent dispatchers take exactly the tokens there are', async () => {
    // Arrange: two connections to one SQLite file stand for two dispatchers
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'autodev-ph-')), 'db');
    const a = new SqliteTaskStore(file);
    const b = new SqliteTaskStore(file);
    const slow = { ratePerSecond: 0.001, burst: 5 };
    // Act
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => admitProvider(i % 2 ? a : b, 'codex', 1000, breaker, slow)),
    );
    // Assert
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    const state = await recordProviderResult(a, 'codex', false, 'crash', 1000, breaker, slow);
    expect(state.breaker.failures).toEqual([1000]);
    expect((await b.listProviderStates()).map((s) => s.provider)).toEqual(['codex']);
  });
});
