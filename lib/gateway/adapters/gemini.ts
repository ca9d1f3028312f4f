import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { NO_TOKENS } from '../../core/metering.js';
import type { SseEvent } from '../sse.js';
import { arr, canonicalJson, type Json, num, obj, single, str } from './json.js';
import type { RefusalKind, RequestInfo, UsageReader, VendorWire, WireAdapter } from './types.js';

const ROUTE = /^\/(v1|v1beta|v1alpha)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

/** Gemini `generateContent` / `streamGenerateContent` (Gemini CLI). The model is named in the path. */
export const geminiGenerate: WireAdapter = {
  name: 'gemini-generate',
  matches: (method, path) => method === 'POST' && ROUTE.test(path),
  inspect(body, path): RequestInfo {
    const contents = arr(obj(body).contents);
    const lastModel = [...contents].reverse().find((c) => obj(c).role === 'model');
    const calls = arr(obj(lastModel).parts)
      .map((p) => obj(obj(p).functionCall))
      .filter((fc) => fc.name !== undefined)
      .map((fc) => `${str(fc.name) ?? ''}(${canonicalJson(fc.args)})`);
    return {
      model: decodeURIComponent(ROUTE.exec(path)?.[2] ?? '') || undefined,
      toolCalls: calls.length > 0 ? calls.join(';') : undefined,
      historyLength: contents.length,
    };
  },
  usageReader: () => new GeminiUsage(),
};

class GeminiUsage implements UsageReader {
  private model: string | undefined;
  private usage: Json | undefined;

  private chunk(c: Json): void {
    this.model = str(c.modelVersion) ?? this.model;
    // each chunk of a stream carries the totals so far: the last one wins
    if (c.usageMetadata) this.usage = obj(c.usageMetadata);
  }

  json(body: unknown): void {
    // a non-SSE streamGenerateContent answers a JSON array of chunks
    if (Array.isArray(body)) for (const c of body) this.chunk(obj(c));
    else this.chunk(obj(body));
  }

  event(ev: SseEvent): void {
    if (!ev.data.includes('usageMetadata') && this.model) return;
    try {
      this.chunk(obj(JSON.parse(ev.data)));
    } catch {
      // not JSON: nothing to read
    }
  }

  result() {
    if (!this.usage) return { model: this.model, tokens: NO_TOKENS };
    const u = this.usage;
    return {
      model: this.model,
      tokens: {
        inputTokens: num(u.promptTokenCount) + num(u.toolUsePromptTokenCount),
        cachedInputTokens: num(u.cachedContentTokenCount),
        cacheWriteTokens: 0,
        outputTokens: num(u.candidatesTokenCount) + num(u.thoughtsTokenCount),
      },
    };
  }
}

const ERRORS: Record<RefusalKind, [number, string]> = {
  unauthorized: [401, 'UNAUTHENTICATED'],
  budget_exceeded: [400, 'FAILED_PRECONDITION'],
  loop_detected: [400, 'FAILED_PRECONDITION'],
  attempt_ended: [403, 'PERMISSION_DENIED'],
  bad_request: [400, 'INVALID_ARGUMENT'],
  not_found: [404, 'NOT_FOUND'],
  upstream_unreachable: [502, 'UNAVAILABLE'],
};

export const geminiWire: VendorWire = {
  vendor: 'gemini',
  basePath: '',
  adapters: [geminiGenerate],
  passthrough: (method, path) =>
    (method === 'POST' && /^\/(v1|v1beta|v1alpha)\/models\/[^/:]+:countTokens$/.test(path)) ||
    (method === 'GET' && /^\/(v1|v1beta|v1alpha)\/models(\/[^/:]+)?$/.test(path)),
  credentialOf: (headers: IncomingHttpHeaders, url: URL) =>
    single(headers['x-goog-api-key']) ?? url.searchParams.get('key') ?? undefined,
  authorize(headers: OutgoingHttpHeaders, url: URL, key: string) {
    // the key travels in a header upstream, never in the URL (where logs would keep it)
    url.searchParams.delete('key');
    headers['x-goog-api-key'] = key;
  },
  error(kind, message) {
    const [status, code] = ERRORS[kind];
    return { status, body: { error: { code: status, message, status: code } } };
  },
};
