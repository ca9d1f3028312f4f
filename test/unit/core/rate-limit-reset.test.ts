import { describe, expect, it } from '@jest/globals';
import { parseDurationMs, parseRetryAfter, rateLimitResetAt } from '../../../lib/core/rate-limit-reset.js';

const NOW = Date.parse('2026-12-02T10:00:00Z');

describe('parseDurationMs', () => {
  it.each([
    ['6m0s', 360_000],
    ['1s', 1_000],
    ['20ms', 20],
    ['1h2m3.5s', 3_723_500],
    ['0.5s', 500],
    ['12', 12_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', 'soon', '5 minutes', '6m0', 's'])('refuses %p', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  it('reads delay seconds and HTTP dates', () => {
    expect(parseRetryAfter('30', NOW)).toBe(NOW + 30_000);
    expect(parseRetryAfter('Wed, 02 Dec 2026 10:10:00 GMT', NOW)).toBe(NOW + 600_000);
    expect(parseRetryAfter('later', NOW)).toBeUndefined();
  });
});

describe('rateLimitResetAt', () => {
  it('takes retry-after-ms, then retry-after, before the vendor headers', () => {
    expect(rateLimitResetAt({ 'retry-after-ms': '1500', 'retry-after': '2' }, NOW)).toBe(NOW + 1_500);
    expect(
      rateLimitResetAt(
        { 'retry-after': '2', 'anthropic-ratelimit-requests-reset': '2026-12-02T11:00:00Z' },
        NOW,
      ),
    ).toBe(NOW + 2_000);
  });

  it('takes the Anthropic limit that is exhausted (remaining 0)', () => {
    const headers = {
      'anthropic-ratelimit-requests-remaining': '10',
      'anthropic-ratelimit-requests-reset': '2026-12-02T11:00:00Z',
      'anthropic-ratelimit-input-tokens-remaining': '0',
      'anthropic-ratelimit-input-tokens-reset': '2026-12-02T10:00:42Z',
    };
    expect(rateLimitResetAt(headers, NOW)).toBe(NOW + 42_000);
  });

  it('takes the latest reset when none says it is exhausted', () => {
    const headers = {
      'anthropic-ratelimit-requests-reset': '2026-12-02T10:00:05Z',
      'anthropic-ratelimit-tokens-reset': '2026-12-02T10:01:00Z',
    };
    expect(rateLimitResetAt(headers, NOW)).toBe(NOW + 60_000);
  });

  it('reads OpenAI durations', () => {
    const headers = {
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '6m0s',
      'x-ratelimit-remaining-tokens': '1000',
      'x-ratelimit-reset-tokens': '20ms',
    };
    expect(rateLimitResetAt(headers, NOW)).toBe(NOW + 360_000);
    expect(rateLimitResetAt({ 'x-ratelimit-reset-tokens': '1s' }, NOW)).toBe(NOW + 1_000);
  });

  it('says nothing when the headers say nothing usable', () => {
    expect(rateLimitResetAt({}, NOW)).toBeUndefined();
    expect(
      rateLimitResetAt({ 'retry-after': 'never', 'x-ratelimit-reset-requests': 'soon' }, NOW),
    ).toBeUndefined();
  });
});
