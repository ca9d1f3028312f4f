import { type Context, SpanKind } from '@opentelemetry/api';
import type { ModelCall } from '../core/metering.js';
import { recordSpan } from './tracing.js';

/**
 * The GenAI semantic conventions' names (gen_ai.* attributes are still "development" in
 * @opentelemetry/semantic-conventions, whose authors ask that they be copied, not imported).
 */
export const GEN_AI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  system: 'gen_ai.system',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
} as const;
export const ATTR_COST_USD = 'autodev.cost_usd';
export const ATTR_CACHED_INPUT_TOKENS = 'autodev.usage.cached_input_tokens';

/** The gateway's vendors as `gen_ai.provider.name` and the older `gen_ai.system` name them. */
const PROVIDER_NAMES: Record<string, { provider: string; system: string }> = {
  anthropic: { provider: 'anthropic', system: 'anthropic' },
  openai: { provider: 'openai', system: 'openai' },
  gemini: { provider: 'gcp.gemini', system: 'gemini' },
};

/**
 * One model call through the gateway as a client span `chat {model}`, recorded when its answer ended:
 * the model asked for and the one that answered, the tokens and the priced cost.
 */
export function recordModelCallSpan(
  parent: Context,
  call: ModelCall,
  requestModel: string | undefined,
  startMs: number,
): void {
  const names = PROVIDER_NAMES[call.provider] ?? { provider: call.provider, system: call.provider };
  const model = requestModel ?? call.model;
  recordSpan(`chat ${model}`, {
    parent,
    kind: SpanKind.CLIENT,
    start: startMs,
    end: startMs + call.durationMs,
    error:
      call.status >= 200 && call.status < 400
        ? undefined
        : `the provider answered ${call.status || 'nothing'}`,
    attributes: {
      [GEN_AI.operationName]: 'chat',
      [GEN_AI.providerName]: names.provider,
      [GEN_AI.system]: names.system,
      [GEN_AI.requestModel]: model,
      [GEN_AI.responseModel]: call.model,
      [GEN_AI.inputTokens]: call.inputTokens,
      [GEN_AI.outputTokens]: call.outputTokens,
      [ATTR_CACHED_INPUT_TOKENS]: call.cachedInputTokens,
      [ATTR_COST_USD]: call.costUsd,
      'http.response.status_code': call.status,
    },
  });
}
