import { describe, expect, it } from '@jest/globals';
import { costOf, DEFAULT_PRICE, FREE, MODEL_PRICES, priceFor } from '../../../lib/worker/drivers/pricing.js';

describe('priceFor', () => {
  it('finds a model by its exact name', () => {
    expect(priceFor('gemini-2.5-flash')).toEqual({ input: 0.3, output: 2.5, cachedInput: 0.03 });
  });

  it('takes the longest entry a dated or suffixed name starts with', () => {
    expect(priceFor('gpt-5-mini-2025-08-07')).toBe(MODEL_PRICES['gpt-5-mini']);
    expect(priceFor('gemini-2.5-flash-lite-preview-09-2025')).toBe(MODEL_PRICES['gemini-2.5-flash-lite']);
    expect(priceFor('claude-sonnet-4-5-20250929')).toBe(MODEL_PRICES['claude-sonnet-4']);
  });

  it('ignores provider prefixes and case', () => {
    expect(priceFor('openai/GPT-5-Codex')).toBe(MODEL_PRICES['gpt-5-codex']);
    expect(priceFor('models/gemini-2.5-pro')).toBe(MODEL_PRICES['gemini-2.5-pro']);
    expect(priceFor('openrouter/anthropic/claude-opus-4-5')).toBe(MODEL_PRICES['claude-opus-4-5']);
  });

  it('falls back to the default price for unknown or missing models', () => {
    expect(priceFor('some-local-model')).toBe(DEFAULT_PRICE);
    expect(priceFor(undefined)).toBe(DEFAULT_PRICE);
    expect(priceFor('')).toBe(DEFAULT_PRICE);
  });

  it('reads a table given by the caller', () => {
    const table = { mine: { input: 1, output: 2 } };
    expect(priceFor('mine-v2', table)).toBe(table.mine);
    expect(priceFor('gpt-5', table)).toBe(DEFAULT_PRICE);
  });
});

describe('costOf', () => {
  it('prices fresh input, cached input and output per million tokens', () => {
    // Act
    const cost = costOf(
      { inputTokens: 2_000_000, cachedInputTokens: 1_000_000, outputTokens: 500_000 },
      { input: 1.25, output: 10, cachedInput: 0.125 },
    );
    // Assert: 1M fresh × 1.25 + 1M cached × 0.125 + 0.5M × 10
    expect(cost).toBeCloseTo(6.375, 12);
  });

  it('prices cached tokens at the input price when the model has no cache price', () => {
    expect(
      costOf({ inputTokens: 1000, cachedInputTokens: 400, outputTokens: 0 }, { input: 2, output: 8 }),
    ).toBeCloseTo(0.002, 12);
  });

  it('never counts more cached tokens than input tokens', () => {
    expect(
      costOf(
        { inputTokens: 100, cachedInputTokens: 500, outputTokens: 0 },
        { input: 10, output: 0, cachedInput: 1 },
      ),
    ).toBeCloseTo(100 / 1e6, 12);
  });

  it('is zero for local models and for no tokens', () => {
    expect(costOf({ inputTokens: 123_456, outputTokens: 7890 }, FREE)).toBe(0);
    expect(costOf({ inputTokens: 0, outputTokens: 0 }, DEFAULT_PRICE)).toBe(0);
  });
});
