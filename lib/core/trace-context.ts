import { randomBytes } from 'node:crypto';

/** A W3C trace context: the trace a task belongs to and the span its next steps hang under. */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  spanId: string;
  sampled: boolean;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO = /^0+$/;

/** Reads a W3C `traceparent` (version 00); undefined when it is not one. */
export function parseTraceParent(value: string | undefined): TraceContext | undefined {
  const m = value?.trim().toLowerCase().match(TRACEPARENT);
  if (!m) return undefined;
  const [, traceId, spanId, flags] = m as unknown as [string, string, string, string];
  if (ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceParent(c: TraceContext): string {
  return `00-${c.traceId}-${c.spanId}-${c.sampled ? '01' : '00'}`;
}

/** A fresh trace (a task submitted where no span is active), sampled. */
export function newTraceContext(): TraceContext {
  return {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    sampled: true,
  };
}

/**
 * An X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`,
 * as in `_X_AMZN_TRACE_ID`) as a W3C context: the same 128 bits, so the ids match in both tools.
 */
export function traceContextFromXray(header: string | undefined): TraceContext | undefined {
  if (!header) return undefined;
  const fields = new Map(
    header.split(';').map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const;
    }),
  );
  const root = fields.get('Root')?.match(/^1-([0-9a-f]{8})-([0-9a-f]{24})$/);
  const parent = fields.get('Parent');
  if (!root || !parent || !/^[0-9a-f]{16}$/.test(parent)) return undefined;
  return parseTraceParent(`00-${root[1]}${root[2]}-${parent}-${fields.get('Sampled') === '1' ? '01' : '00'}`);
}

/** The X-Ray form of a W3C trace id (`1-<8 hex>-<24 hex>`), to find the trace in the X-Ray console. */
export function xrayTraceId(traceId: string): string {
  return `1-${traceId.slice(0, 8)}-${traceId.slice(8)}`;
}

/**
 * Since when a task has waited to run: its creation, the end of its last attempt, or the end of the
 * wait a retry was given, whichever is latest (ms since epoch). The queue-wait span and queue age.
 */
export function readySince(task: {
  createdAt: string;
  notBefore?: number;
  attempts: readonly { endedAt?: string }[];
}): number {
  const ended = task.attempts.at(-1)?.endedAt;
  return Math.max(Date.parse(task.createdAt), ended ? Date.parse(ended) : 0, task.notBefore ?? 0);
}
