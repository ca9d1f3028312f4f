import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { formatTraceParent, parseTraceParent } from '../core/trace-context.js';

/**
 * Spans through the OpenTelemetry API only: with no SDK started (lib/telemetry/sdk.ts) every call
 * here is a no-op, so workers, the gateway and the executor call it unconditionally.
 */
const tracer = () => trace.getTracer('autodev');

export interface SpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  /** The parent; default the active context. */
  parent?: Context;
  /**
   * Publishes the span's context under this key while `fn` runs (see `publishedContext`): work that
   * arrives from outside the call stack (the agent's model calls through the gateway) hangs under it.
   */
  publishAs?: string;
}

const published = new Map<string, Context>();

/** Runs `fn` in a new active span that ends when `fn` settles (an error marks it failed). */
export function withSpan<T>(
  name: string,
  fn: (span: Span) => Promise<T> | T,
  o: SpanOptions = {},
): Promise<T> {
  const parent = o.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    { attributes: o.attributes, kind: o.kind ?? SpanKind.INTERNAL },
    parent,
    async (span) => {
      const key = o.publishAs;
      if (key) published.set(key, trace.setSpan(parent, span));
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: err instanceof Error ? err.message : String(err),
        });
        throw err;
      } finally {
        if (key) published.delete(key);
        span.end();
      }
    },
  );
}

/** The context a `withSpan(..., { publishAs: key })` call runs in now, if one does. */
export function publishedContext(key: string): Context | undefined {
  return published.get(key);
}

/** A span recorded after the fact, from its start and end times (ms since epoch). */
export function recordSpan(
  name: string,
  o: {
    parent?: Context;
    start: number;
    end: number;
    attributes?: Attributes;
    kind?: SpanKind;
    error?: string;
  },
): void {
  const span = tracer().startSpan(
    name,
    { attributes: o.attributes, kind: o.kind ?? SpanKind.INTERNAL, startTime: o.start },
    o.parent ?? context.active(),
  );
  if (o.error) span.setStatus({ code: SpanStatusCode.ERROR, message: o.error });
  span.end(Math.max(o.start, o.end));
}

/** The context of a task's trace, from the `traceparent` stored on it: its steps become children of it. */
export function taskContext(task: { traceParent?: string }, base: Context = ROOT_CONTEXT): Context {
  const c = parseTraceParent(task.traceParent);
  if (!c) return base;
  return trace.setSpanContext(base, {
    traceId: c.traceId,
    spanId: c.spanId,
    traceFlags: c.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

/** The `traceparent` of the active span, when one with a valid id is active. */
export function activeTraceParent(): string | undefined {
  const sc = trace.getSpanContext(context.active());
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return formatTraceParent({
    traceId: sc.traceId,
    spanId: sc.spanId,
    sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
  });
}

/** The trace id of the active span, for a structured log line. */
export function activeTraceId(): string | undefined {
  const sc = trace.getSpanContext(context.active());
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

/** A log line's extra fields with the active trace id added (when there is one and none is set). */
export function withTraceId(extra: Record<string, unknown> = {}): Record<string, unknown> {
  if (extra.traceId !== undefined) return extra;
  const traceId = activeTraceId();
  return traceId ? { ...extra, traceId } : extra;
}

/** Span attributes of AutoDev's own (beside the OpenTelemetry semantic conventions). */
export const ATTR_TASK_ID = 'autodev.task_id';
export const ATTR_ATTEMPT = 'autodev.attempt';
export const ATTR_PROVIDER = 'autodev.provider';

export function attemptAttributes(plan: { attempt: number; provider: string }): Attributes {
  return { [ATTR_ATTEMPT]: plan.attempt, [ATTR_PROVIDER]: plan.provider };
}

/** The key an attempt's agent span is published under (`withSpan(..., { publishAs })`). */
export const agentSpanKey = (taskId: string) => `agent:${taskId}`;

/** Runs an agent process in an `agent run` span that the task's model calls hang under. */
export function withAgentSpan<T>(taskId: string, provider: string, fn: () => Promise<T>): Promise<T> {
  return withSpan('agent run', fn, {
    attributes: { [ATTR_TASK_ID]: taskId, [ATTR_PROVIDER]: provider },
    publishAs: agentSpanKey(taskId),
  });
}

/**
 * Where the model calls of a task's agent hang: its agent span while one runs, else the context
 * active when this is called (the attempt).
 */
export function agentTraceContext(taskId: string): () => Context {
  const fallback = context.active();
  return () => publishedContext(agentSpanKey(taskId)) ?? fallback;
}

export { SpanKind };
