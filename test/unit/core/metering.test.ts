import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_TOKEN_PRICE,
  type ModelCall,
  parseModelPrices,
  priceCall,
  sumCalls,
  TOKEN_PRICES,
  tokenPriceFor,
} from '../../../lib/core/metering.js';

describe('priceCall', () => {
  it('prices fresh input, cache reads, cache writes and output each at its own rate', () => {
    // 1000 fresh × $3 + 4000 read × $0.3 + 2000 written × $3.75 + 500 out × $15, per million
    const cost = priceCall(
      { inputTokens: 7000, cachedInputTokens: 4000, cacheWriteTokens: 2000, outputTokens: 500 },
      { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
    );
    expect(cost).toBeCloseTo((1000 * 3 + 4000 * 0.3 + 2000 * 3.75 + 500 * 15) / 1e6, 12);
  });

  it('prices cache tokens at the input rate when the entry has no cache prices', () => {
    const cost = priceCall(
      { inputTokens: 100, cachedInputTokens: 60, cacheWriteTokens: 40, outputTokens: 10 },
      { input: 2, output: 8 },
    );
    expect(cost).toBeCloseTo((100 * 2 + 10 * 8) / 1e6, 12);
  });

  it('never counts more cached tokens than input tokens', () => {
    const cost = priceCall(
      { inputTokens: 10, cachedInputTokens: 50, cacheWriteTokens: 50, outputTokens: 0 },
      { input: 1, output: 1, cacheRead: 0.1 },
    );
    expect(cost).toBeCloseTo((10 * 0.1) / 1e6, 12);
  });
});

describe('tokenPriceFor', () => {
  it('finds dated names by their longest prefix, ignores provider prefixes, defaults the rest', () => {
    expect(tokenPriceFor('claude-sonnet-4-5-20250929')).toBe(TOKEN_PRICES['claude-sonnet-4']);
    expect(tokenPriceFor('models/gemini-2.5-flash-lite')).toBe(TOKEN_PRICES['gemini-2.5-flash-lite']);
    expect(tokenPriceFor('gpt-6.1-sol')).toBe(DEFAULT_TOKEN_PRICE);
    expect(tokenPriceFor(undefined)).toBe(DEFAULT_TOKEN_PRICE);
  });
});

describe('sumCalls', () => {
  it('sums a ledger into a task usage', () => {
    const call = (input: number, cached: number, output: number, costUsd: number): ModelCall => ({
      at: '2026-12-02T10:00:00.000Z',
      provider: 'anthropic',
      model: 'm',
      inputTokens: input,
      cachedInputTokens: cached,
      cacheWriteTokens: 0,
      outputTokens: output,
      costUsd,
      status: 200,
      durationMs: 5,
    });
    expect(sumCalls([call(100, 10, 5, 0.25), call(200, 0, 7, 0.5)])).toEqual({
      inputTokens: 300,
      cachedInputTokens: 10,
      outputTokens: 12,
      costUsd: 0.75,
    });
    expect(sumCalls([])).toEqual({ inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0 });
  });
});

describe('price overrides (providers.yaml `prices`, AUTODEV_MODEL_PRICES on the worker)', () => {
  it('puts configured prices over the built-in table, matched like its entries', () => {
    // Arrange / Act
    const table = parseModelPrices(
      '{"Claude-Sonnet-4-5": {"input": 2, "output": 11}, "my-local": {"input": 0, "output": 0}}',
      'AUTODEV_MODEL_PRICES',
    );
    // Assert
    expect(tokenPriceFor('claude-sonnet-4-5-20250929', table)).toEqual({ input: 2, output: 11 });
    expect(tokenPriceFor('my-local-7b', table)).toEqual({ input: 0, output: 0 });
    expect(tokenPriceFor('gpt-5', table)).toEqual(TOKEN_PRICES['gpt-5']);
    expect(parseModelPrices('', 'AUTODEV_MODEL_PRICES')).toBe(TOKEN_PRICES);
  });

  it('refuses a bad price table, naming the field', () => {
    expect(() => parseModelPrices('{"gpt-5": {"input": -1, "output": 1}}', 'AUTODEV_MODEL_PRICES')).toThrow(
      /^AUTODEV_MODEL_PRICES: gpt-5\.input: /,
    );
    expect(() => parseModelPrices('{"gpt-5": {"input": 1}}', 'AUTODEV_MODEL_PRICES')).toThrow(
      /gpt-5\.output/,
    );
    expect(() => parseModelPrices('not json', 'AUTODEV_MODEL_PRICES')).toThrow(/not valid JSON/);
  });
});
