import { TOKEN_PRICES } from '../../core/metering.js';
import type { Usage } from '../../core/schemas.js';

/** List prices in USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Price of input tokens read from the provider's prompt cache; `input` when absent. */
  cachedInput?: number;
}

/** Used for models not in the table: a mid-range frontier price, so that budgets err on the safe side. */
export const DEFAULT_PRICE: ModelPrice = { input: 3, output: 15, cachedInput: 0.3 };

/** Local models (Ollama, llama.cpp, LM Studio, vLLM) cost nothing per token. */
export const FREE: ModelPrice = { input: 0, output: 0, cachedInput: 0 };

/**
 * Published list prices for the models the CLIs use by default or commonly: the model gateway's
 * table (lib/core/metering.ts), without cache writes. A model matches its own entry or else the
 * longest entry its name starts with (`gpt-5-codex-mini` → `gpt-5-codex`).
 */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = Object.fromEntries(
  Object.entries(TOKEN_PRICES).map(([model, p]) => [
    model,
    p.cacheRead === undefined
      ? { input: p.input, output: p.output }
      : { input: p.input, output: p.output, cachedInput: p.cacheRead },
  ]),
);

/**
 * The price of `model`: its table entry, else the longest entry it starts with, else DEFAULT_PRICE.
 * Provider prefixes (`openai/`, `models/`, `anthropic/`) are ignored.
 */
export function priceFor(model: string | undefined, table = MODEL_PRICES): ModelPrice {
  if (!model) return DEFAULT_PRICE;
  const name = model.toLowerCase().slice(model.lastIndexOf('/') + 1);
  const exact = table[name];
  if (exact) return exact;
  let best: string | undefined;
  for (const key of Object.keys(table)) {
    if (name.startsWith(key) && (!best || key.length > best.length)) best = key;
  }
  return (best && table[best]) || DEFAULT_PRICE;
}

/** Cost in USD of `usage` at `price`; cached input tokens (part of inputTokens) at the cached rate. */
export function costOf(
  usage: Pick<Usage, 'inputTokens' | 'outputTokens' | 'cachedInputTokens'>,
  price: ModelPrice,
): number {
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
  const fresh = usage.inputTokens - cached;
  return (
    (fresh * price.input + cached * (price.cachedInput ?? price.input) + usage.outputTokens * price.output) /
    1e6
  );
}
