import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { Usage } from './schemas.js';

/**
 * Pricing and usage sums for model calls seen on the wire (the model gateway's ledger). Pure: the
 * gateway parses each response, calls `priceCall`, and the task's usage is `sumCalls` of its ledger.
 */

/** List prices in USD per million tokens. */
export interface TokenPrice {
  input: number;
  output: number;
  /** Input tokens read from the provider's prompt cache; `input` when absent. */
  cacheRead?: number;
  /** Input tokens written to the provider's prompt cache; `input` when absent. */
  cacheWrite?: number;
}

export type PriceTable = Readonly<Record<string, TokenPrice>>;

/** Used for models not in the table: a mid-range frontier price, so that budgets err on the safe side. */
export const DEFAULT_TOKEN_PRICE: TokenPrice = { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 };

/**
 * Published list prices. A model matches its own entry or else the longest entry its name starts
 * with (`claude-sonnet-4-5-20250929` → `claude-sonnet-4`). Anthropic bills cache writes (5-minute
 * TTL) at 1.25 × input; OpenAI and Google bill no separate write price.
 */
export const TOKEN_PRICES: PriceTable = {
  // OpenAI
  'gpt-5': { input: 1.25, output: 10, cacheRead: 0.125 },
  'gpt-5-codex': { input: 1.25, output: 10, cacheRead: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cacheRead: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cacheRead: 0.005 },
  'gpt-5-pro': { input: 15, output: 120 },
  'gpt-4.1': { input: 2, output: 8, cacheRead: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cacheRead: 0.1 },
  'gpt-4o': { input: 2.5, output: 10, cacheRead: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cacheRead: 0.075 },
  o3: { input: 2, output: 8, cacheRead: 0.5 },
  'o4-mini': { input: 1.1, output: 4.4, cacheRead: 0.275 },
  'codex-mini': { input: 1.5, output: 6, cacheRead: 0.375 },
  // Google
  'gemini-2.5-pro': { input: 1.25, output: 10, cacheRead: 0.125 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cacheRead: 0.03 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cacheRead: 0.01 },
  'gemini-3-pro': { input: 2, output: 12, cacheRead: 0.2 },
  // Anthropic
  'claude-sonnet-4': { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  'claude-opus-4': { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  'claude-opus-4-5': { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  'claude-haiku-4-5': { input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 },
  'claude-3-5-haiku': { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 },
  // Cursor's short names for Anthropic models
  'sonnet-4': { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  'opus-4': { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  'opus-4.5': { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
};

/** One model's price as configured (USD per million tokens); unknown fields are refused. */
export const TokenPriceConfig = z
  .object({
    input: z.number().nonnegative(),
    output: z.number().nonnegative(),
    cacheRead: z.number().nonnegative().optional(),
    cacheWrite: z.number().nonnegative().optional(),
  })
  .strict();

/** Prices by model name (a name also prices the models it starts, as in TOKEN_PRICES). */
export const PriceTableConfig = z.record(z.string().trim().min(1).max(200), TokenPriceConfig);

/** The built-in table with `overrides` over it (names matched without case, like the lookups). */
export function priceTableWith(overrides: Readonly<Record<string, TokenPrice>> | undefined): PriceTable {
  if (!overrides || Object.keys(overrides).length === 0) return TOKEN_PRICES;
  const table: Record<string, TokenPrice> = { ...TOKEN_PRICES };
  for (const [model, price] of Object.entries(overrides)) table[model.toLowerCase()] = price;
  return table;
}

/** Why a price table is not valid, each problem naming its field (`prices.gpt-5.input: ...`). */
export function describePriceIssues(error: z.ZodError, prefix: string): string {
  return error.issues
    .map((i) => `${[prefix, ...i.path].filter((p) => p !== '').join('.') || '(top)'}: ${i.message}`)
    .join('; ');
}

/** `AUTODEV_MODEL_PRICES` (JSON, the `prices` of providers.yaml): the built-in table with it over it. */
export function parseModelPrices(text: string, variable: string): PriceTable {
  if (!text.trim()) return TOKEN_PRICES;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${variable}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = PriceTableConfig.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${variable}: ${describePriceIssues(parsed.error, '')}`);
  return priceTableWith(parsed.data);
}

/** The price of `model`: its entry, else the longest entry it starts with, else DEFAULT_TOKEN_PRICE. */
export function tokenPriceFor(model: string | undefined, table: PriceTable = TOKEN_PRICES): TokenPrice {
  if (!model) return DEFAULT_TOKEN_PRICE;
  const name = model.toLowerCase().slice(model.lastIndexOf('/') + 1);
  const exact = table[name];
  if (exact) return exact;
  let best: string | undefined;
  for (const key of Object.keys(table)) {
    if (name.startsWith(key) && (!best || key.length > best.length)) best = key;
  }
  return (best && table[best]) || DEFAULT_TOKEN_PRICE;
}

/** Tokens of one model call, normalised across vendors. */
export interface CallTokens {
  /** Every input token, cached and cache-written ones included. */
  inputTokens: number;
  /** Input tokens read from the prompt cache (part of inputTokens). */
  cachedInputTokens: number;
  /** Input tokens written to the prompt cache (part of inputTokens). */
  cacheWriteTokens: number;
  /** Output tokens, reasoning included. */
  outputTokens: number;
}

export const NO_TOKENS: CallTokens = {
  inputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
};

/** Cost in USD of one call's tokens at `price`. */
export function priceCall(tokens: CallTokens, price: TokenPrice): number {
  const cached = Math.min(tokens.cachedInputTokens, tokens.inputTokens);
  const written = Math.min(tokens.cacheWriteTokens, tokens.inputTokens - cached);
  const fresh = tokens.inputTokens - cached - written;
  return (
    (fresh * price.input +
      cached * (price.cacheRead ?? price.input) +
      written * (price.cacheWrite ?? price.input) +
      tokens.outputTokens * price.output) /
    1e6
  );
}

/** One model call as the gateway saw it. */
export interface ModelCall extends CallTokens {
  /** ISO time the request arrived. */
  at: string;
  provider: string;
  model: string;
  costUsd: number;
  /** The upstream's HTTP status, or 0 when no answer came (unreachable, client gone). */
  status: number;
  durationMs: number;
}

/** A task's usage: the sum of its model calls. */
export function sumCalls(calls: readonly ModelCall[]): Usage {
  let inputTokens = 0;
  let outputTokens = 0;
  let cachedInputTokens = 0;
  let costUsd = 0;
  for (const c of calls) {
    inputTokens += c.inputTokens;
    outputTokens += c.outputTokens;
    cachedInputTokens += c.cachedInputTokens;
    costUsd += c.costUsd;
  }
  return { inputTokens, outputTokens, cachedInputTokens, costUsd };
}
