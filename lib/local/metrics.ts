import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskStore } from '../core/ports.js';
import { type BreakerPolicy, breakerMode, type ProviderState, successRate } from '../core/provider-health.js';
import { TASK_STATUSES, type Task } from '../core/schemas.js';
import type { AttemptReport } from '../worker/run-attempt.js';
import type { ExecutorEvents } from './executor.js';

/** Prometheus metrics of the local platform, served at GET /metrics. */
export class PlatformMetrics implements ExecutorEvents {
  readonly registry = new Registry();
  private readonly durations: Histogram<'status'>;
  private readonly attempts: Counter<'provider' | 'outcome'>;
  private readonly startLatency: Histogram;

  constructor(
    store: TaskStore,
    activeAgents: () => number,
    providers?: { states: () => Promise<ProviderState[]>; breaker: BreakerPolicy },
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'autodev_process_' });
    new Gauge({
      name: 'autodev_tasks',
      help: 'Tasks by status.',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const counts = await store.countByStatus();
        for (const s of TASK_STATUSES) this.set({ status: s }, counts[s]);
      },
    });
    new Gauge({
      name: 'autodev_queue_depth',
      help: 'Tasks waiting to run (queued or retrying).',
      registers: [this.registry],
      async collect() {
        const counts = await store.countByStatus();
        this.set(counts.queued + counts.retrying);
      },
    });
    new Gauge({
      name: 'autodev_running_agents',
      help: 'Agent processes running in this server.',
      registers: [this.registry],
      collect() {
        this.set(activeAgents());
      },
    });
    if (providers) {
      new Gauge({
        name: 'autodev_provider_breaker_state',
        help: 'Circuit breaker state per provider (1 for the current state).',
        labelNames: ['provider', 'state'],
        registers: [this.registry],
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
        name: 'autodev_provider_success_ratio',
        help: 'Share of the recent attempts on a provider that succeeded.',
        labelNames: ['provider'],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const s of await providers.states()) {
            const rate = successRate(s);
            if (rate !== undefined) this.set({ provider: s.provider }, rate);
          }
        },
      });
    }
    this.durations = new Histogram({
      name: 'autodev_task_duration_seconds',
      help: 'Time from submission to the end of a task, by final status.',
      labelNames: ['status'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
      registers: [this.registry],
    });
    this.attempts = new Counter({
      name: 'autodev_provider_attempts_total',
      help: 'Attempts by provider and outcome (succeeded, or the error class).',
      labelNames: ['provider', 'outcome'],
      registers: [this.registry],
    });
    this.startLatency = new Histogram({
      name: 'autodev_agent_start_latency_seconds',
      help: 'Time from an attempt starting to its agent process running (workspace preparation included).',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
  }

  attemptEnded(provider: string, report: AttemptReport): void {
    this.attempts.inc({ provider, outcome: report.ok ? 'succeeded' : (report.errorClass ?? 'crash') });
  }

  taskEnded(task: Task): void {
    if (task.durationMs !== undefined)
      this.durations.observe({ status: task.status }, task.durationMs / 1000);
  }

  agentStarted(latencyMs: number): void {
    this.startLatency.observe(latencyMs / 1000);
  }
}
