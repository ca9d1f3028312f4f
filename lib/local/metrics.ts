import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS, type MetricSpec, PROCESS_METRICS_PREFIX } from '../core/metric-names.js';
import type { TaskStore } from '../core/ports.js';
import { type BreakerPolicy, breakerMode, type ProviderState, successRate } from '../core/provider-health.js';
import { TASK_STATUSES, type Task } from '../core/schemas.js';
import { readySince } from '../core/trace-context.js';
import type { AttemptReport } from '../worker/run-attempt.js';
import type { ExecutorEvents } from './executor.js';

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/** A prom-client metric's name, help and labels, from the list in lib/core/metric-names. */
const from = (m: MetricSpec) => ({ name: m.name, help: m.help, labelNames: [...m.labels] });

/** Prometheus metrics of the local platform, served at GET /metrics (names: lib/core/metric-names). */
export class PlatformMetrics implements ExecutorEvents {
  readonly registry = new Registry();
  private readonly taskDurations: Histogram;
  private readonly finished: Counter;
  private readonly attempts: Counter;
  private readonly attemptDurations: Histogram;
  private readonly retries: Counter;
  private readonly cost: Counter;
  private readonly tokens: Counter;
  private readonly startLatency: Histogram;

  constructor(
    store: TaskStore,
    activeAgents: () => number,
    providers?: { states: () => Promise<ProviderState[]>; breaker: BreakerPolicy },
    /** The tasks waiting to run longest (for the queue's age). */
    waiting?: () => Promise<Task[]>,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: PROCESS_METRICS_PREFIX });
    new Gauge({
      ...from(METRICS.tasks),
      registers,
      async collect() {
        const counts = await store.countByStatus();
        for (const s of TASK_STATUSES) this.set({ status: s }, counts[s]);
      },
    });
    new Gauge({
      ...from(METRICS.queueDepth),
      registers,
      async collect() {
        const counts = await store.countByStatus();
        this.set(counts.queued + counts.retrying);
      },
    });
    if (waiting)
      new Gauge({
        ...from(METRICS.queueAge),
        registers,
        async collect() {
          const now = Date.now();
          const since = (await waiting()).map(readySince).filter((t) => t <= now);
          this.set(since.length > 0 ? (now - Math.min(...since)) / 1000 : 0);
        },
      });
    new Gauge({
      ...from(METRICS.runningAgents),
      registers,
      collect() {
        this.set(activeAgents());
      },
    });
    if (providers) {
      new Gauge({
        ...from(METRICS.breakerState),
        registers,
        async collect() {
          this.reset();
          const now = Date.now();
          for (const s of await providers.states()) {
            const mode = breakerMode(s, now, providers.breaker);
            for (const m of ['closed', 'open', 'half_open'] as const)
              this.set({ provider: s.provider, state: m }, m === mode ? 1 : 0);
          }
        },
      });
      new Gauge({
        ...from(METRICS.providerSuccess),
        registers,
        async collect() {
          this.reset();
          for (const s of await providers.states()) {
            const rate = successRate(s);
            if (rate !== undefined) this.set({ provider: s.provider }, rate);
          }
        },
      });
    }
    this.taskDurations = new Histogram({
      ...from(METRICS.taskDuration),
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.finished = new Counter({ ...from(METRICS.tasksFinished), registers });
    this.attempts = new Counter({ ...from(METRICS.attempts), registers });
    this.attemptDurations = new Histogram({
      ...from(METRICS.attemptDuration),
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.retries = new Counter({ ...from(METRICS.retries), registers });
    this.cost = new Counter({ ...from(METRICS.cost), registers });
    this.tokens = new Counter({ ...from(METRICS.tokens), registers });
    this.startLatency = new Histogram({
      ...from(METRICS.agentStartLatency),
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  attemptEnded(provider: string, report: AttemptReport, durationMs?: number): void {
    this.attempts.inc({ provider, outcome: report.ok ? 'succeeded' : (report.errorClass ?? 'crash') });
    if (durationMs !== undefined) this.attemptDurations.observe({ provider }, durationMs / 1000);
    this.cost.inc({ provider }, report.usage.costUsd);
    this.tokens.inc({ provider, direction: 'input' }, report.usage.inputTokens);
    this.tokens.inc({ provider, direction: 'output' }, report.usage.outputTokens);
  }

  taskRetrying(): void {
    this.retries.inc();
  }

  taskEnded(task: Task): void {
    this.finished.inc({ status: task.status });
    if (task.durationMs !== undefined)
      this.taskDurations.observe({ status: task.status }, task.durationMs / 1000);
  }

  agentStarted(latencyMs: number): void {
    this.startLatency.observe(latencyMs / 1000);
  }
}
