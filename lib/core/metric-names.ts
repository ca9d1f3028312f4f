/**
 * Every metric AutoDev emits, by the same name in both shapes: Prometheus on the local platform
 * (`GET /metrics`, lib/local/metrics.ts) and CloudWatch EMF on AWS (Powertools Metrics in the
 * Lambdas, lib/aws/emf.ts), where labels become dimensions. `where` says which shape has it (some
 * facts exist on one side only: the reaper is AWS's, the breaker gauges are read from the local store).
 * docs/grafana-dashboard.json queries these names; tests hold both sides and the dashboard to this list.
 */
export type MetricKind = 'counter' | 'gauge' | 'histogram';
/** CloudWatch units (EMF); Prometheus carries the unit in the name's suffix. */
export type MetricUnit = 'Count' | 'Seconds' | 'None';
export type MetricShape = 'prometheus' | 'emf';

export interface MetricSpec {
  readonly name: string;
  readonly kind: MetricKind;
  readonly unit: MetricUnit;
  readonly labels: readonly string[];
  readonly help: string;
  readonly where: readonly MetricShape[];
}

const both: readonly MetricShape[] = ['prometheus', 'emf'];
const local: readonly MetricShape[] = ['prometheus'];
const aws: readonly MetricShape[] = ['emf'];

export const METRICS = {
  tasks: {
    name: 'autodev_tasks',
    kind: 'gauge',
    unit: 'Count',
    labels: ['status'],
    help: 'Tasks by status.',
    where: local,
  },
  queueDepth: {
    name: 'autodev_queue_depth',
    kind: 'gauge',
    unit: 'Count',
    labels: [],
    help: 'Tasks waiting to run (queued or retrying).',
    where: local,
  },
  queueAge: {
    name: 'autodev_queue_oldest_age_seconds',
    kind: 'gauge',
    unit: 'Seconds',
    labels: [],
    help: 'How long the task that has waited longest to run has waited (0 when none waits).',
    where: local,
  },
  runningAgents: {
    name: 'autodev_running_agents',
    kind: 'gauge',
    unit: 'Count',
    labels: [],
    help: 'Agent processes running in this server.',
    where: local,
  },
  breakerState: {
    name: 'autodev_provider_breaker_state',
    kind: 'gauge',
    unit: 'None',
    labels: ['provider', 'state'],
    help: 'Circuit breaker state per provider (1 for the current state).',
    where: local,
  },
  providerSuccess: {
    name: 'autodev_provider_success_ratio',
    kind: 'gauge',
    unit: 'None',
    labels: ['provider'],
    help: 'Share of the recent attempts on a provider that succeeded.',
    where: local,
  },
  tasksAdmitted: {
    name: 'autodev_tasks_admitted_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Tasks admitted from the queue to a workflow.',
    where: aws,
  },
  attemptsStarted: {
    name: 'autodev_attempts_started_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Attempts started (the prepare step added one).',
    where: aws,
  },
  attemptsDeferred: {
    name: 'autodev_attempts_deferred_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Prepare steps that made a task wait (no provider admitted it yet).',
    where: aws,
  },
  attemptsParked: {
    name: 'autodev_attempts_parked_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Executions parked until a provider frees a slot (a callback, no polling while parked).',
    where: aws,
  },
  attempts: {
    name: 'autodev_provider_attempts_total',
    kind: 'counter',
    unit: 'Count',
    labels: ['provider', 'outcome'],
    help: 'Attempts by provider and outcome (succeeded, or the error class).',
    where: both,
  },
  attemptDuration: {
    name: 'autodev_attempt_duration_seconds',
    kind: 'histogram',
    unit: 'Seconds',
    labels: ['provider'],
    help: 'Time from an attempt starting to its end, by provider.',
    where: both,
  },
  agentStartLatency: {
    name: 'autodev_agent_start_latency_seconds',
    kind: 'histogram',
    unit: 'Seconds',
    labels: [],
    help: 'Time from an attempt starting to its agent process running (workspace preparation included).',
    where: local,
  },
  tasksFinished: {
    name: 'autodev_tasks_finished_total',
    kind: 'counter',
    unit: 'Count',
    labels: ['status'],
    help: 'Tasks that ended, by final status (succeeded, failed, cancelled).',
    where: both,
  },
  taskDuration: {
    name: 'autodev_task_duration_seconds',
    kind: 'histogram',
    unit: 'Seconds',
    labels: ['status'],
    help: 'Time from submission to the end of a task, by final status.',
    where: both,
  },
  retries: {
    name: 'autodev_retries_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Attempts after which the task was retried (or failed over to another provider).',
    where: both,
  },
  cost: {
    name: 'autodev_cost_usd_total',
    kind: 'counter',
    unit: 'None',
    labels: ['provider'],
    help: 'Model spend in US dollars, by provider (attempts as recorded).',
    where: both,
  },
  tokens: {
    name: 'autodev_tokens_total',
    kind: 'counter',
    unit: 'Count',
    labels: ['provider', 'direction'],
    help: 'Model tokens by provider and direction (input, output).',
    where: both,
  },
  recurringSubmitted: {
    name: 'autodev_recurring_tasks_submitted_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Tasks submitted by schedules.',
    where: aws,
  },
  reaped: {
    name: 'autodev_reaper_tasks_total',
    kind: 'counter',
    unit: 'Count',
    labels: ['action'],
    help: 'Tasks the reaper acted on: requeued, ended (failed or cancelled), released, reannounced, woken (parked waiters resumed).',
    where: aws,
  },
  notifications: {
    name: 'autodev_notifications_total',
    kind: 'counter',
    unit: 'Count',
    labels: ['outcome'],
    help: 'Task notifications by outcome (sent, failed).',
    where: aws,
  },
  malformedMessages: {
    name: 'autodev_malformed_messages_total',
    kind: 'counter',
    unit: 'Count',
    labels: [],
    help: 'Queue messages the dispatcher could not read.',
    where: aws,
  },
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof METRICS;
export type LabelsOf<K extends MetricKey> = Record<(typeof METRICS)[K]['labels'][number], string>;

/** prom-client's Node.js process metrics (CPU, memory, event loop) carry this prefix locally. */
export const PROCESS_METRICS_PREFIX = 'autodev_process_';

/** Whether a metric name (a Prometheus series' base name or an EMF metric) is one of the list. */
export function isKnownMetric(name: string): boolean {
  if (name.startsWith(PROCESS_METRICS_PREFIX)) return true;
  return Object.values(METRICS).some((m) => m.name === name);
}
