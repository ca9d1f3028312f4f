import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { NO_TOKENS } from '../../core/metering.js';
import type { SseEvent } from '../sse.js';
import { arr, bearer, canonicalArguments, type Json, num, obj, str } from './json.js';
import type { RefusalKind, RequestInfo, UsageReader, VendorWire, WireAdapter } from './types.js';

const RESPONSE_CALL_TYPES = new Set(['function_call', 'custom_tool_call', 'local_shell_call']);
const RESPONSE_SKIP_TYPES = new Set([
  'function_call_output',
  'custom_tool_call_output',
  'local_shell_call_output',
  'reasoning',
]);

/**
 * The tool calls of the latest assistant turn of a Responses `input`: the run of calls nearest the
 * end, past their outputs (parallel calls sit side by side, their outputs after them).
 */
function responsesToolCalls(input: unknown[]): string | undefined {
  const calls: string[] = [];
  let i = input.length - 1;
  while (i >= 0 && RESPONSE_SKIP_TYPES.has(str(obj(input[i]).type) ?? '')) i--;
  for (; i >= 0; i--) {
    const item = obj(input[i]);
    const type = str(item.type) ?? '';
    if (type === 'reasoning') continue;
    if (!RESPONSE_CALL_TYPES.has(type)) break;
    const args = item.arguments ?? item.input ?? item.action;
    calls.unshift(`${str(item.name) ?? type}(${canonicalArguments(args)})`);
  }
  return calls.length > 0 ? calls.join(';') : undefined;
}

/** OpenAI Responses (`POST /v1/responses`): Codex, opencode. */
export const openaiResponses: WireAdapter = {
  name: 'openai-responses',
  matches: (method, path) => method === 'POST' && path === '/responses',
  inspect(body): RequestInfo {
    const b = obj(body);
    const input = arr(b.input);
    return { model: str(b.model), toolCalls: responsesToolCalls(input), historyLength: input.length };
  },
  usageReader: () => new ResponsesUsage(),
};

class ResponsesUsage implements UsageReader {
  private model: string | undefined;
  private usage: Json | undefined;

  json(body: unknown): void {
    const b = obj(body);
    this.model = str(b.model) ?? this.model;
    if (b.usage) this.usage = obj(b.usage);
  }

  event(ev: SseEvent): void {
    // only the first and the last events matter; the many deltas are not parsed
    if (ev.event && !/^response\.(created|completed|failed|incomplete)$/.test(ev.event)) return;
    const data = parse(ev.data);
    if (data.response) this.json(data.response);
  }

  result() {
    if (!this.usage) return { model: this.model, tokens: NO_TOKENS };
    const u = this.usage;
    return {
      model: this.model,
      tokens: {
        inputTokens: num(u.input_tokens),
        cachedInputTokens: num(obj(u.input_tokens_details).cached_tokens),
        cacheWriteTokens: 0,
        outputTokens: num(u.output_tokens),
      },
    };
  }
}

/** OpenAI Chat Completions (`POST /v1/chat/completions`): opencode and Aider on OpenAI-compatible servers. */
export const openaiChat: WireAdapter = {
  name: 'openai-chat',
  matches: (method, path) => method === 'POST' && path === '/chat/completions',
  inspect(body): RequestInfo {
    const b = obj(body);
    const messages = arr(b.messages);
    const lastAssistant = [...messages].reverse().find((m) => obj(m).role === 'assistant');
    const calls = arr(obj(lastAssistant).tool_calls).map((c) => {
      const fn = obj(obj(c).function);
      return `${str(fn.name) ?? ''}(${canonicalArguments(fn.arguments)})`;
    });
    const info: RequestInfo = {
      model: str(b.model),
      toolCalls: calls.length > 0 ? calls.join(';') : undefined,
      historyLength: messages.length,
    };
    // a stream reports usage only when asked: ask, so that every call is metered
    if (b.stream === true && obj(b.stream_options).include_usage !== true)
      info.rewritten = { ...b, stream_options: { ...obj(b.stream_options), include_usage: true } };
    return info;
  },
  usageReader: () => new ChatUsage(),
};

class ChatUsage implements UsageReader {
  private model: string | undefined;
  private usage: Json | undefined;

  json(body: unknown): void {
    const b = obj(body);
    this.model = str(b.model) ?? this.model;
    if (b.usage) this.usage = obj(b.usage);
  }

  event(ev: SseEvent): void {
    if (ev.data === '[DONE]') return;
    // every chunk names the model; only the last (usage) chunk is worth parsing in full
    if (this.model && !ev.data.includes('"usage"')) return;
    this.json(parse(ev.data));
  }

  result() {
    if (!this.usage) return { model: this.model, tokens: NO_TOKENS };
    const u = this.usage;
    return {
      model: this.model,
      tokens: {
        inputTokens: num(u.prompt_tokens),
        cachedInputTokens: num(obj(u.prompt_tokens_details).cached_tokens),
        cacheWriteTokens: 0,
        outputTokens: num(u.completion_tokens),
      },
    };
  }
}

function parse(data: string): Json {
  try {
    return obj(JSON.parse(data));
  } catch {
    return {};
  }
}

const ERRORS: Record<RefusalKind, [number, string, string]> = {
  unauthorized: [401, 'invalid_request_error', 'invalid_api_key'],
  budget_exceeded: [400, 'invalid_request_error', 'budget_exceeded'],
  loop_detected: [400, 'invalid_request_error', 'loop_detected'],
  attempt_ended: [403, 'invalid_request_error', 'attempt_ended'],
  bad_request: [400, 'invalid_request_error', 'invalid_request'],
  not_found: [404, 'invalid_request_error', 'not_found'],
  upstream_unreachable: [502, 'server_error', 'upstream_unreachable'],
};

export const openaiWire: VendorWire = {
  vendor: 'openai',
  basePath: '/v1',
  adapters: [openaiResponses, openaiChat],
  passthrough: (method, path) => method === 'GET' && /^\/models(\/[^/]+)?$/.test(path),
  credentialOf: (headers: IncomingHttpHeaders) => bearer(headers.authorization),
  authorize(headers: OutgoingHttpHeaders, _url: URL, key: string) {
    headers.authorization = `Bearer ${key}`;
  },
  error(kind, message) {
    const [status, type, code] = ERRORS[kind];
    return { status, body: { error: { message, type, param: null, code } } };
  },
};
