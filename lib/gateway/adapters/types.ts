import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { CallTokens } from '../../core/metering.js';
import type { SseEvent } from '../sse.js';

/** The vendors whose wire protocols the gateway speaks. */
export const VENDORS = ['anthropic', 'openai', 'gemini'] as const;
export type Vendor = (typeof VENDORS)[number];

/** Why the gateway answers a request itself instead of forwarding it. */
export type RefusalKind =
  | 'unauthorized'
  | 'budget_exceeded'
  | 'loop_detected'
  | 'attempt_ended'
  | 'bad_request'
  | 'not_found'
  | 'upstream_unreachable';

export interface ErrorReply {
  status: number;
  body: unknown;
}

/** What the gateway needs from a model request before forwarding it. */
export interface RequestInfo {
  model?: string;
  /** The tool calls of the conversation's latest assistant turn, as one comparable string. */
  toolCalls?: string;
  /** Messages (or input items) in the conversation: a retry of the same request has as many. */
  historyLength: number;
  /** The body to forward when it must differ from the one received (e.g. to ask for usage). */
  rewritten?: unknown;
}

/** Reads a response's usage as it passes: a JSON body, or the events of a stream. */
export interface UsageReader {
  json(body: unknown): void;
  event(ev: SseEvent): void;
  result(): { model?: string; tokens: CallTokens };
}

/** One wire protocol (one metered route) of a vendor. */
export interface WireAdapter {
  readonly name: string;
  /** Whether this adapter serves `method path` (the path without the vendor's base path). */
  matches(method: string, path: string): boolean;
  inspect(body: unknown, path: string): RequestInfo;
  usageReader(): UsageReader;
}

/** What a vendor shares across its protocols: base path, credentials, error format. */
export interface VendorWire {
  readonly vendor: Vendor;
  /** The path the CLIs' base URL for this vendor carries (`/v1` for OpenAI, none for the others). */
  readonly basePath: string;
  readonly adapters: readonly WireAdapter[];
  /**
   * Unmetered routes the CLIs need that cost nothing (model lists, token counts): forwarded as
   * they are. Any other route is refused, so that no call (a batch, a file upload) escapes metering.
   */
  passthrough(method: string, path: string): boolean;
  /** The credential a client sent, where this vendor's clients put it. */
  credentialOf(headers: IncomingHttpHeaders, url: URL): string | undefined;
  /** Puts `key` where the upstream expects it (in place of the client's credential). */
  authorize(headers: OutgoingHttpHeaders, url: URL, key: string, received: IncomingHttpHeaders): void;
  error(kind: RefusalKind, message: string): ErrorReply;
}
