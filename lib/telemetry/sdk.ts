import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface Telemetry {
  /** Spans are exported (an OTLP endpoint is configured). */
  readonly exporting: boolean;
  /** Sends the spans ended so far. */
  flush(): Promise<void>;
  /** Flushes and, when the last user of the process's SDK stops, uninstalls it. */
  shutdown(): Promise<void>;
}

let installed: { provider: NodeTracerProvider; exporting: boolean; users: number } | undefined;

/**
 * Starts OpenTelemetry tracing for this process from the standard variables: spans go by OTLP/HTTP
 * (JSON) to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or to `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
 * Neither set (or `OTEL_SDK_DISABLED=true`): nothing is recorded or exported, but the trace context
 * still flows through the process, so log lines carry their task's trace id. One SDK per process:
 * a second start shares the first.
 */
export function startTelemetry(
  env: Readonly<Record<string, string | undefined>> = process.env,
  serviceName = 'autodev',
): Telemetry {
  if (!installed) {
    const disabled = env.OTEL_SDK_DISABLED?.toLowerCase() === 'true';
    const exporting =
      !disabled && Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
    const provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME || serviceName }),
      // every span of a task, or none: a task is one trace of a few dozen spans
      sampler: exporting ? new AlwaysOnSampler() : new AlwaysOffSampler(),
      // the exporter reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, timeout)
      spanProcessors: exporting
        ? [new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 1000 })]
        : [],
    });
    provider.register();
    installed = { provider, exporting, users: 0 };
  }
  installed.users++;
  const mine = installed;
  let stopped = false;
  return {
    exporting: mine.exporting,
    flush: () => mine.provider.forceFlush(),
    async shutdown() {
      if (stopped) return;
      stopped = true;
      await mine.provider.forceFlush();
      if (--mine.users > 0 || installed !== mine) return;
      installed = undefined;
      await mine.provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
