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
 * Published list prices for the models the CLIs use by default or commonly. A model matches its
 * own entry or else the longest entry its name starts with (`gpt-5-codex-mini` → `gpt-5-codex`).
 */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  // OpenAI (Codex, Cursor, opencode, Aider)
  'gpt-5': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-codex': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cachedInput: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cachedInput: 0.005 },
  'gpt-5-pro': { input: 15, output: 120 },
  'gpt-4.1': { input: 2, output: 8, cachedInput: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cachedInput: 0.1 },
  'gpt-4o': { input: 2.5, output: 10, cachedInput: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  o3: { input: 2, output: 8, cachedInput: 0.5 },
  'o4-mini': { input: 1.1, output: 4.4, cachedInput: 0.275 },
  'codex-mini': { input: 1.5, output: 6, cachedInput: 0.375 },
  // Google (Gemini CLI)
  'gemini-2.5-pro': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cachedInput: 0.03 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cachedInput: 0.01 },
  'gemini-3-pro': { input: 2, output: 12, cachedInput: 0.2 },
  // Anthropic (Cursor, opencode, Aider)
  'claude-sonnet-4': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-opus-4': { input: 15, output: 75, cachedInput: 1.5 },
  'claude-opus-4-5': { input: 5, output: 25, cachedInput: 0.5 },
  'claude-haiku-4-5': { input: 1, output: 5, cachedInput: 0.1 },
  'claude-3-5-haiku': { input: 0.8, output: 4, cachedInput: 0.08 },
  // Cursor's short names for Anthropic models
  'sonnet-4': { input: 3, output: 15, cachedInput: 0.3 },
  'opus-4': { input: 15, output: 75, cachedInput: 1.5 },
  'opus-4.5': { input: 5, output: 25, cachedInput: 0.5 },
};

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
