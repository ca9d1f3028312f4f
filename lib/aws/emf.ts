import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { type LabelsOf, METRICS, type MetricKey } from '../core/metric-names.js';
import { isTerminal, type Task } from '../core/schemas.js';
import { xrayTraceId } from '../core/trace-context.js';

/**
 * Emits one metric of the list (lib/core/metric-names) as CloudWatch EMF: its labels become
 * dimensions (beside the service), a histogram's observations are single values CloudWatch keeps
 * percentiles of. A metric with labels is flushed at once as its own EMF record.
 */
export function emit<K extends MetricKey>(
  metrics: Metrics,
  key: K,
  value: number,
  ...labels: (typeof METRICS)[K]['labels'] extends readonly [] ? [] : [LabelsOf<K>]
): void {
  const spec = METRICS[key];
  const dims = Object.entries((labels[0] ?? {}) as Record<string, string>);
  if (dims.length === 0) {
    metrics.addMetric(spec.name, spec.unit, value);
    return;
  }
  const single = metrics.singleMetric();
  for (const [k, v] of dims) single.addDimension(k, v);
  single.addMetric(spec.name, spec.unit, value);
}

/**
 * The metrics of an attempt the record step just recorded, from the task as stored after it: the
 * attempt (outcome, duration, spend, tokens), and the retry or the task's end.
 */
export function emitRecorded(metrics: Metrics, task: Task, attemptNumber: number): void {
  const attempt = task.attempts.find((a) => a.number === attemptNumber);
  if (attempt?.endedAt) {
    const provider = attempt.provider;
    const outcome = attempt.outcome === 'succeeded' ? 'succeeded' : (attempt.errorClass ?? attempt.outcome);
    emit(metrics, 'attempts', 1, { provider, outcome });
    const seconds = (Date.parse(attempt.endedAt) - Date.parse(attempt.startedAt)) / 1000;
    if (seconds >= 0) emit(metrics, 'attemptDuration', seconds, { provider });
    const usage = attempt.usage;
    if (usage) {
      emit(metrics, 'cost', usage.costUsd, { provider });
      emit(metrics, 'tokens', usage.inputTokens, { provider, direction: 'input' });
      emit(metrics, 'tokens', usage.outputTokens, { provider, direction: 'output' });
    }
  }
  if (task.status === 'retrying') emit(metrics, 'retries', 1);
  if (isTerminal(task.status)) {
    emit(metrics, 'tasksFinished', 1, { status: task.status });
    if (task.durationMs !== undefined)
      emit(metrics, 'taskDuration', task.durationMs / 1000, { status: task.status });
  }
}

/**
 * Marks the Lambda's X-Ray segment with the task it worked on and the task's trace (W3C id and its
 * X-Ray form), so that X-Ray's search (`annotation.autodev_trace_id = "..."`) finds every step of it.
 */
export function annotateTask(tracer: Tracer, task: Pick<Task, 'id' | 'traceId'>): void {
  tracer.putAnnotation('autodev_task_id', task.id);
  if (task.traceId) {
    tracer.putAnnotation('autodev_trace_id', task.traceId);
    tracer.putAnnotation('autodev_xray_trace_id', xrayTraceId(task.traceId));
  }
}
