import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { NO_TOKENS } from '../../core/metering.js';
import type { SseEvent } from '../sse.js';
import { arr, bearer, canonicalJson, type Json, num, obj, single, str } from './json.js';
import type { RefusalKind, RequestInfo, UsageReader, VendorWire, WireAdapter } from './types.js';

/** Anthropic Messages (`POST /v1/messages`): Claude Code, and Aider and opencode on Anthropic. */
export const anthropicMessages: WireAdapter = {
  name: 'anthropic-messages',
  matches: (method, path) => method === 'POST' && path === '/v1/messages',
  inspect(body): RequestInfo {
    const b = obj(body);
    const messages = arr(b.messages);
    const lastAssistant = [...messages].reverse().find((m) => obj(m).role === 'assistant');
    const calls = arr(obj(lastAssistant).content)
      .map(obj)
      .filter((c) => c.type === 'tool_use')
      .map((c) => `${str(c.name) ?? ''}(${canonicalJson(c.input)})`);
    return {
      model: str(b.model),
      toolCalls: calls.length > 0 ? calls.join(';') : undefined,
      historyLength: messages.length,
    };
  },
  usageReader: () => new AnthropicUsage(),
};

class AnthropicUsage implements UsageReader {
  private model: string | undefined;
  private input = 0;
  private cacheRead = 0;
  private cacheWrite = 0;
  private output = 0;

  private take(usage: Json): void {
    if (typeof usage.input_tokens === 'number') this.input = num(usage.input_tokens);
    if (typeof usage.cache_read_input_tokens === 'number')
      this.cacheRead = num(usage.cache_read_input_tokens);
    if (typeof usage.cache_creation_input_tokens === 'number')
      this.cacheWrite = num(usage.cache_creation_input_tokens);
    if (typeof usage.output_tokens === 'number') this.output = num(usage.output_tokens);
  }

  json(body: unknown): void {
    const b = obj(body);
    this.model = str(b.model) ?? this.model;
    this.take(obj(b.usage));
  }

  event(ev: SseEvent): void {
    if (ev.event && ev.event !== 'message_start' && ev.event !== 'message_delta') return;
    const data = parse(ev.data);
    if (data.type === 'message_start') this.json(data.message);
    // message_delta carries the cumulative output count (and, lately, the input counts again)
    else if (data.type === 'message_delta') this.take(obj(data.usage));
  }

  result() {
    if (this.input + this.cacheRead + this.cacheWrite + this.output === 0)
      return { model: this.model, tokens: NO_TOKENS };
    return {
      model: this.model,
      tokens: {
        inputTokens: this.input + this.cacheRead + this.cacheWrite,
        cachedInputTokens: this.cacheRead,
        cacheWriteTokens: this.cacheWrite,
        outputTokens: this.output,
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

const ERRORS: Record<RefusalKind, [number, string]> = {
  unauthorized: [401, 'authentication_error'],
  budget_exceeded: [400, 'invalid_request_error'],
  loop_detected: [400, 'invalid_request_error'],
  attempt_ended: [403, 'permission_error'],
  bad_request: [400, 'invalid_request_error'],
  not_found: [404, 'not_found_error'],
  upstream_unreachable: [502, 'api_error'],
};

export const anthropicWire: VendorWire = {
  vendor: 'anthropic',
  basePath: '',
  adapters: [anthropicMessages],
  passthrough: (method, path) =>
    (method === 'POST' && path === '/v1/messages/count_tokens') ||
    (method === 'GET' && /^\/v1\/models(\/[^/]+)?$/.test(path)),
  credentialOf: (headers: IncomingHttpHeaders) =>
    single(headers['x-api-key']) ?? bearer(headers.authorization),
  authorize(headers: OutgoingHttpHeaders, _url: URL, key: string, received: IncomingHttpHeaders) {
    // the real key goes where the client put its credential: x-api-key, or a bearer token
    if (received['x-api-key'] !== undefined) headers['x-api-key'] = key;
    else headers.authorization = `Bearer ${key}`;
  },
  error(kind, message) {
    const [status, type] = ERRORS[kind];
    return { status, body: { type: 'error', error: { type, message } } };
  },
};
