import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InfrastructureError, type InfrastructureRetryPolicy } from '../core/infrastructure.js';
import { attemptsThisRun, type RetryPolicy } from '../core/lifecycle.js';
import type { ClaimableTaskStore } from '../core/ports.js';
import {
  type BreakerPolicy,
  type ProviderStateStore,
  type RatePolicy,
  recordRateLimit,
} from '../core/provider-health.js';
import type { QuotaPolicy } from '../core/quotas.js';
import type { AgentRole } from '../core/roles.js';
import { isTerminal, type Task } from '../core/schemas.js';
import type { TaskNotifier } from '../core/tasks.js';
import { type TenantSpendStore, tenantSpendHooks } from '../core/tenant-spend.js';
import { readySince } from '../core/trace-context.js';
import { type AttemptPlan, abandonAttempt } from '../core/workflow.js';
import {
  type EngineDeps,
  mutateTask,
  type ProviderSlots,
  prepareNext,
  type RecordResult,
  type RoutingDeps,
  reapTask,
  recordInfrastructureNext,
  recordNext,
  releaseAll,
  startLeaseHeartbeat,
} from '../core/workflow-engine.js';
import { type GatewayOptions, ModelGateway } from '../gateway/server.js';
import {
  ATTR_TASK_ID,
  agentTraceContext,
  attemptAttributes,
  recordSpan,
  taskContext,
  withSpan,
} from '../telemetry/tracing.js';
import { resolveBinary } from '../worker/agent-process.js';
import type { ForgeEntry } from '../worker/forge/resolve.js';
import type { KnownSecrets } from '../worker/known-secrets.js';
import {
  type AttemptContext,
  type AttemptReport,
  type ProviderConfig,
  runAttempt,
} from '../worker/run-attempt.js';
import type { Sandbox } from '../worker/sandbox.js';
import type { GitWorkspaces } from '../worker/workspace.js';
import type { TaskQueue } from './fair-queue.js';

export interface ExecutorEvents {
  attemptEnded?(provider: string, report: AttemptReport, durationMs: number): void;
  taskEnded?(task: Task): void;
  /** The task will run again (a retry or a fail-over after a wait). */
  taskRetrying?(task: Task): void;
  agentStarted?(latencyMs: number): void;
}

export interface ExecutorOptions {
  store: ClaimableTaskStore;
  workspaces: GitWorkspaces;
  roles: Record<string, AgentRole>;
  providers: Record<string, ProviderConfig>;
  concurrency: number;
  leaseMs: number;
  pollMs?: number;
  defaultTimeoutSeconds: number;
  retryPolicy?: RetryPolicy;
  /** Jitter source for retry delays (tests fix it). */
  random?: () => number;
  /** Backoff for attempts whose worker could not be started. @default DEFAULT_INFRASTRUCTURE_POLICY */
  infrastructure?: InfrastructureRetryPolicy;
  baseEnv: Record<string, string>;
  /** Routing of `provider: "auto"` tasks (figures, policy, random source). */
  routing?: RoutingDeps;
  /** Circuit breakers and rate limits per provider, shared through the store. */
  health?: { store: ProviderStateStore; breaker: BreakerPolicy; rate: RatePolicy };
  /** Keep worktrees after attempts (for debugging). */
  keepWorkspaces?: boolean;
  /** Without a forge, keep the merge train branch (lib/worker/merge-train.ts). */
  mergeTrain?: boolean;
  events?: ExecutorEvents;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /** Forges that pull requests are opened on; absent: pushed branches only, no pull requests. */
  forges?: readonly ForgeEntry[];
  /** Secrets by name (forge tokens). */
  secrets?: Readonly<Record<string, string | undefined>>;
  /** The platform's secret values: never pushed, replaced in logs and messages. */
  knownSecrets?: KnownSecrets;
  /** The API's public URL, for links to a task's logs (asked when an attempt starts). */
  publicUrl?: () => string | undefined;
  /**
   * The model gateway this executor runs on the loopback (default: on, with its defaults; `false`:
   * off). Each attempt whose CLI it can front gets a session: metering, budgets, no real key.
   */
  modelGateway?: false | GatewayOptions;
  /** Each tenant's model spend per day, counted from the gateway's ledger and held to `usdPerDay`. */
  tenantSpend?: { store: TenantSpendStore; quotas: QuotaPolicy };
  /** How agents and gates are contained; `unavailable` fails every task with a clear error. */
  sandbox?: Sandbox;
  /**
   * The worker: runs one attempt and reports how it ended. It throws InfrastructureError when it
   * could not be started (the attempt is taken back, as on AWS). @default runAttempt
   */
  runAttempt?: (ctx: AttemptContext) => Promise<AttemptReport>;
  /** Which task starts next (default: the store's most urgent; the platform passes its fair-share queue). */
  queue?: TaskQueue;
  /** The sandbox of one task, when it may differ from `sandbox` (full access of its role). */
  sandboxFor?: (task: Task) => Promise<Sandbox | undefined>;
}

interface Running {
  task: Task;
  abort: AbortController;
  done: Promise<void>;
  stopReason?: 'shutdown' | 'lease_lost';
}

/** An attempt this executor started: the task as stored then, and what the attempt runs with. */
interface Started {
  task: Task;
  plan: AttemptPlan;
  role: AgentRole;
  startedAt: Date;
}

/** How the worker ended: its report, or it never ran (infrastructure). */
type WorkerOutcome = { report: AttemptReport } | { notStarted: string };

type TaskLog = (line: string) => void;

/** Identifies one executor: host, pid and a random part, so a restarted server never looks like its predecessor. */
export function newOwnerId(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

/** Whether the owner of a lease is a live process (checked on this host; other hosts rely on expiry). */
function ownerAlive(owner: string, self: string): boolean | undefined {
  if (owner === self) return true;
  const [host, pid] = owner.split('/');
  if (host !== hostname() || !pid) return undefined;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The local workflow executor: a small durable loop over the store, running the same workflow steps
 * as the Step Functions workflow (lib/core/workflow-engine). Each task goes
 * pick (claim under a lease) → prepare → run the attempt → record → retry after a wait, or finish;
 * reap and release run on a timer. What is local: claiming from SQLite, the timers that stand in
 * for the state machine's waits, the worker run in this process, and its model gateway session.
 */
export class LocalExecutor implements TaskNotifier {
  readonly owner = newOwnerId();
  private readonly running = new Map<string, Running>();
  private started = false;
  private stopping = false;
  private pumping = false;
  private pumpAgain = false;
  private ticker?: NodeJS.Timeout;
  /**
   * A task may have ended since blocked tasks were last looked at (one of this executor's, or any:
   * the ticker sets it), so the release step runs on the next pump: not on every pump (each
   * submission wakes one), whose cost grows with the blocked tasks.
   */
  private dependenciesMoved = true;
  private releasedAt = 0;
  private releaseTimer?: NodeJS.Timeout;
  private reaper?: NodeJS.Timeout;
  private gateway?: ModelGateway;
  /** Attempts starting in this process, not yet visible in the store (for maxConcurrent). */
  private readonly starting = new Map<string, number>();
  private readonly engine: EngineDeps;

  constructor(private readonly o: ExecutorOptions) {
    this.engine = {
      store: o.store,
      roles: o.roles,
      available: this.available,
      health: o.health,
      policy: o.retryPolicy,
      random: o.random,
      defaultTimeoutSeconds: o.defaultTimeoutSeconds,
      infrastructure: o.infrastructure,
      routing: o.routing,
    };
  }

  get activeCount(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    this.started = true;
    if (this.o.modelGateway !== false) this.gateway = await ModelGateway.start(this.o.modelGateway ?? {});
    await this.reap();
    const running = new Set((await this.o.store.listRunning()).map((t) => t.id));
    const swept = await this.o.workspaces.sweep((id) => running.has(id));
    if (swept > 0) this.log('removed workspaces left by stopped executors', { count: swept });
    this.ticker = setInterval(() => {
      this.dependenciesMoved = true;
      this.wake();
    }, this.o.pollMs ?? 500);
    this.reaper = setInterval(
      () => void this.reap().catch((e) => this.log('reaper failed', { err: String(e) })),
      Math.max(1000, this.o.leaseMs / 2),
    );
    this.wake();
  }

  async taskReady(): Promise<void> {
    this.wake();
  }

  async cancelRequested(task: Task): Promise<void> {
    this.running.get(task.id)?.abort.abort();
  }

  /** Stops claiming, lets running tasks finish for up to drainMs, then stops them and re-queues them. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    clearTimeout(this.releaseTimer);
    clearInterval(this.reaper);
    const all = () => Promise.all([...this.running.values()].map((r) => r.done));
    const drained = await Promise.race([all().then(() => true), sleep(drainMs).then(() => false)]);
    if (!drained) {
      for (const r of this.running.values()) {
        r.stopReason = 'shutdown';
        r.abort.abort();
      }
      await all();
    }
    await this.gateway?.close();
  }

  /** A 429/529/503 the gateway saw: the provider's breaker and token bucket hear of it at once. */
  private rateLimited(provider: string, resetAt: number | undefined): void {
    const health = this.o.health;
    if (!health) return;
    void recordRateLimit(health.store, provider, resetAt, Date.now(), health.breaker, health.rate).catch(
      (e) => this.log('could not record provider health', { provider, err: String(e) }),
    );
  }

  private log(msg: string, extra?: Record<string, unknown>) {
    this.o.log?.(msg, extra);
  }

  wake(): void {
    if (this.stopping || !this.started) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump()
      .catch((e) => this.log('dispatch failed', { err: String(e) }))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.wake();
        }
      });
  }

  /** Wakes the loop at `at` (ms), when a waiting task becomes ready. */
  private wakeAt(at: number | undefined): void {
    setTimeout(() => this.wake(), Math.max(0, (at ?? 0) - Date.now()) + 5).unref();
  }

  private async pump(): Promise<void> {
    // a scan reads every blocked task: at most one per RELEASE_EVERY_MS (many tasks end at once at scale)
    const sinceRelease = Date.now() - this.releasedAt;
    if (this.dependenciesMoved && sinceRelease < RELEASE_EVERY_MS) {
      this.releaseTimer ??= setTimeout(() => {
        this.releaseTimer = undefined;
        this.wake();
      }, RELEASE_EVERY_MS - sinceRelease).unref();
    } else if (this.dependenciesMoved) {
      this.dependenciesMoved = false;
      this.releasedAt = Date.now();
      await this.releaseBlocked();
    }
    while (!this.stopping && this.running.size < this.o.concurrency) {
      const task = await this.pickNext();
      if (!task) return;
      this.launch(task);
    }
  }

  /**
   * Which ready task runs next: the queue's choice (the platform's fair-share queue), else the
   * store's most urgent one (queued, or retrying whose wait is over), claimed under this
   * executor's lease. undefined when none is ready.
   */
  private pickNext(): Promise<Task | undefined> {
    return (this.o.queue ?? this.o.store).claimNext(this.owner, this.o.leaseMs, new Date());
  }

  private launch(task: Task): void {
    const entry: Running = { task, abort: new AbortController(), done: Promise.resolve() };
    entry.done = this.execute(entry)
      .catch((e) =>
        this.log('task execution failed', { taskId: task.id, traceId: task.traceId, err: String(e) }),
      )
      .finally(() => {
        this.running.delete(task.id);
        this.dependenciesMoved = true;
        this.wake();
      });
    this.running.set(task.id, entry);
  }

  /** Installed, with credentials (or none needed): worth sending work to. */
  private available = (p: string): boolean => {
    const cfg = this.o.providers[p];
    if (!cfg || resolveBinary(cfg.bin, this.o.baseEnv.PATH) === undefined) return false;
    const needed = cfg.driver.credentialEnv;
    return needed.length === 0 || needed.some((v) => this.o.baseEnv[v] || cfg.env[v]);
  };

  private ownsLease = (t: Task) => t.status === 'running' && t.lease?.owner === this.owner;

  /** One claimed task: prepare, run the attempt, record. */
  private async execute(entry: Running): Promise<void> {
    // the task's trace (its submission's span): the wait in the queue, then this attempt under it
    const parent = taskContext(entry.task);
    const attributes = { [ATTR_TASK_ID]: entry.task.id };
    recordSpan('queue wait', { parent, start: readySince(entry.task), end: Date.now(), attributes });
    await withSpan(
      'attempt',
      (span) =>
        this.withTaskLog(entry.task.id, async (log) => {
          const started = await this.prepare(entry, log);
          if (!started) return;
          span.setAttributes(attemptAttributes(started.plan));
          const outcome = await this.runWorker(entry, started, log);
          await this.record(entry, started, outcome, log);
        }),
      { parent, attributes },
    );
  }

  /** Runs `fn` with a log for the task: redacted lines, written to the store in batches. */
  private async withTaskLog(taskId: string, fn: (log: TaskLog) => Promise<void>): Promise<void> {
    const buffer: string[] = [];
    let flushing: Promise<void> = Promise.resolve();
    const flush = () => {
      const lines = buffer.splice(0);
      flushing = flushing
        .then(() => this.o.store.appendLogs(taskId, lines, new Date()))
        .catch(() => undefined);
      return flushing;
    };
    const timer = setInterval(flush, 200);
    try {
      await fn((line) => buffer.push(this.o.knownSecrets?.redact(line) ?? line));
    } finally {
      clearInterval(timer);
      await flush();
    }
  }

  /**
   * The prepare step (core): the provider admitted by provider health and this executor's
   * `maxConcurrent` places, the attempt added under a lease this executor renews. Or the task waits
   * for a provider, or stops (cancelled, unknown role). undefined when no attempt runs.
   */
  private async prepare(entry: Running, log: TaskLog): Promise<Started | undefined> {
    const slots = await this.slotsFor(entry.task.id);
    const now = new Date();
    const prepared = await prepareNext(this.engine, {
      taskId: entry.task.id,
      leaseOwner: this.owner,
      now,
      leaseMs: this.o.leaseMs,
      executor: this.owner,
      slots,
      minWaitMs: 10,
    }).finally(() => slots.release()); // the attempt is in the store now (or not at all)
    if (!prepared) return undefined;
    if (prepared.action === 'wait') {
      if (prepared.moved) {
        log(`waiting: ${prepared.reason}`);
        this.wakeAt(now.getTime() + prepared.waitMs);
      }
      return undefined;
    }
    if (prepared.action === 'stop') {
      if (prepared.moved) this.settled(prepared.task, log);
      return undefined;
    }
    const role = this.o.roles[prepared.task.role] as AgentRole;
    if (prepared.skipped.length > 0) log(`skipping ${prepared.skipped.join(', ')}`);
    if (prepared.routing) log(`routed to ${prepared.routing.choice}: ${prepared.routing.reason}`);
    log(`attempt ${attemptsThisRun(prepared.task)} of ${role.maxAttempts} on ${prepared.plan.provider}`);
    return { task: prepared.task, plan: prepared.plan, role, startedAt: now };
  }

  /** The places this executor may still take on each provider (`maxConcurrent`), for one admission. */
  private async slotsFor(taskId: string): Promise<ProviderSlots & { release(): void }> {
    const running = await this.runningByProvider(taskId);
    const taken: string[] = [];
    return {
      full: (p) => {
        const limit = this.o.providers[p]?.maxConcurrent;
        const busy = (running.get(p) ?? 0) + (this.starting.get(p) ?? 0);
        return limit !== undefined && busy >= limit ? `at its limit of ${limit} at once` : undefined;
      },
      take: (p) => {
        this.starting.set(p, (this.starting.get(p) ?? 0) + 1);
        taken.push(p);
      },
      release: () => {
        for (const p of taken.splice(0)) {
          const n = (this.starting.get(p) ?? 0) - 1;
          if (n > 0) this.starting.set(p, n);
          else this.starting.delete(p);
        }
      },
    };
  }

  /** Running attempts per provider, counted in the store (every executor on it). */
  private async runningByProvider(taskId: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (!Object.values(this.o.providers).some((p) => p.maxConcurrent !== undefined)) return counts;
    for (const t of await this.o.store.listRunning()) {
      const current = t.attempts.at(-1);
      if (t.id !== taskId && current?.outcome === 'running')
        counts.set(current.provider, (counts.get(current.provider) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Runs the attempt's worker with the lease renewed while it works (core heartbeat) and a model
   * gateway session in front of its CLI; the report carries the session's ledger and priced usage.
   */
  private async runWorker(entry: Running, started: Started, log: TaskLog): Promise<WorkerOutcome> {
    const { task, plan } = started;
    const heartbeat = startLeaseHeartbeat({
      store: this.o.store,
      taskId: task.id,
      attempt: plan.attempt,
      everyMs: Math.max(250, this.o.leaseMs / 3),
      leaseMs: this.o.leaseMs,
      onLost: () => {
        entry.stopReason = 'lease_lost';
        entry.abort.abort();
      },
      onRenewed: (t) => {
        if (t.cancelRequested) entry.abort.abort();
      },
    });
    const cfg = this.o.providers[plan.provider];
    let report: AttemptReport;
    try {
      report = cfg
        ? await (this.o.runAttempt ?? runAttempt)({
            ...this.attemptContext(entry, started, cfg, log),
            // full access of the task's role, when the platform says so
            sandbox: (await this.o.sandboxFor?.(started.task)) ?? this.o.sandbox,
          })
        : notConfigured(plan.provider);
    } catch (err) {
      if (err instanceof InfrastructureError) return { notStarted: err.message };
      // the worker ended without a report: a crash, as on AWS
      const message = `the worker ended without a report: ${err instanceof Error ? err.message : String(err)}`;
      report = { ok: false, errorClass: 'crash', message, usage: emptyUsage(), changedFiles: [] };
    } finally {
      await heartbeat.stop();
    }
    this.o.events?.attemptEnded?.(plan.provider, report, Date.now() - started.startedAt.getTime());
    return { report };
  }

  /** What the worker is given for one attempt, with the fence it checks before it pushes. */
  private attemptContext(
    entry: Running,
    started: Started,
    cfg: ProviderConfig,
    log: TaskLog,
  ): AttemptContext {
    const { task, plan, role } = started;
    return {
      task,
      role,
      provider: cfg,
      workspaces: this.o.workspaces,
      baseEnv: this.o.baseEnv,
      defaultTimeoutSeconds: this.o.defaultTimeoutSeconds,
      log,
      signal: entry.abort.signal,
      modelGateway: this.gateway && {
        gateway: this.gateway,
        attemptId: `${task.id}/${plan.attempt}`,
        // the provider's breaker and token bucket hear of a rate limit at once, not when the CLI gives up
        // (the reviewer's session names the review agent's provider)
        onRateLimit: (e, provider) => this.rateLimited(provider, e.resetAt),
        // model calls hang under the agent's span (or this attempt's, between agent runs)
        traceContext: agentTraceContext(task.id),
        ...(this.o.tenantSpend &&
          tenantSpendHooks(this.o.tenantSpend.store, this.o.tenantSpend.quotas, task.tenant, (e) =>
            this.log('could not count the tenant spend', { err: String(e) }),
          )),
      },
      keepWorkspace: this.o.keepWorkspaces,
      mergeTrain: this.o.mergeTrain,
      forges: this.o.forges,
      providers: this.o.providers,
      sandbox: this.o.sandbox,
      secrets: this.o.secrets,
      knownSecrets: this.o.knownSecrets,
      logsUrl: logsUrlFor(this.o.publicUrl?.(), task.id),
      confirmOwnership: async () => {
        const fenced = await mutateTask(this.o.store, task.id, (t) =>
          this.ownsLease(t) && !t.cancelRequested ? { ...t, version: t.version + 1 } : undefined,
        );
        if (fenced?.after) return true;
        if (!fenced || !this.ownsLease(fenced.before)) entry.stopReason = 'lease_lost';
        return false;
      },
      onAgentStart: (pid) => {
        this.o.events?.agentStarted?.(Date.now() - started.startedAt.getTime());
        void mutateTask(this.o.store, task.id, (t) =>
          this.ownsLease(t)
            ? {
                ...t,
                attempts: t.attempts.map((a) => (a.number === plan.attempt ? { ...a, agentPid: pid } : a)),
                version: t.version + 1,
              }
            : undefined,
        ).catch(() => undefined);
      },
    };
  }

  /**
   * The record step (core): how the attempt ended decides what comes next (finish, retry after a
   * wait, fail over, fail); a worker that never started uses no attempt. An attempt stopped by a
   * shutdown is abandoned and the task queued for the next executor.
   */
  private async record(
    entry: Running,
    started: Started,
    outcome: WorkerOutcome,
    log: TaskLog,
  ): Promise<void> {
    if (entry.stopReason === 'lease_lost') {
      log('this executor lost the task lease; another one owns the task now');
      return;
    }
    const base = { taskId: started.task.id, attempt: started.plan.attempt, leaseOwner: this.owner };
    const now = new Date();
    if ('notStarted' in outcome) {
      const result = await recordInfrastructureNext(this.engine, {
        ...base,
        reason: outcome.notStarted,
        now,
      });
      if (result?.moved) log(`the worker could not be started (${outcome.notStarted}); no attempt used`);
      return this.afterRecord(result, log);
    }
    const { report } = outcome;
    if (entry.stopReason === 'shutdown') {
      const abandoned = await mutateTask(this.o.store, base.taskId, (t) =>
        abandonAttempt({
          task: t,
          attempt: base.attempt,
          usage: report.usage,
          calls: report.calls,
          leaseOwner: this.owner,
          now,
          message: 'the server stopped before the attempt finished',
        }),
      );
      if (abandoned?.after) return this.settled(abandoned.after, log);
    }
    this.afterRecord(await recordNext(this.engine, { ...base, report, now }), log);
  }

  private afterRecord(result: RecordResult | undefined, log: TaskLog): void {
    if (!result?.moved) return;
    if (result.reason) log(`will retry: ${result.reason}`);
    this.settled(result.task, log);
  }

  /** Tells of a task this executor moved: its log, the end event, the wake-up when it waits. */
  private settled(task: Task, log: TaskLog): void {
    log(`task ${task.status}${task.error ? `: ${task.error.message}` : ''}`);
    if (isTerminal(task.status)) this.o.events?.taskEnded?.(task);
    if (task.status === 'retrying') {
      this.o.events?.taskRetrying?.(task);
      this.wakeAt(task.notBefore);
    }
  }

  /**
   * The reap step (core `reapExpired`) for running tasks this executor does not run: those whose
   * lease expired, and at once those whose executor is gone (a process on this host that ended).
   */
  async reap(): Promise<number> {
    let n = 0;
    const now = new Date();
    for (const task of await this.o.store.listRunning()) {
      if (this.running.has(task.id)) continue;
      const owner = task.lease?.owner ?? '';
      const alive = ownerAlive(owner, this.owner);
      // a live owner keeps its task while its lease holds; a dead one loses it at once
      if ((task.lease?.expiresAt ?? 0) >= now.getTime() && alive !== false) continue;
      const lost = alive === false ? { owner, description: `its executor (${owner}) is gone` } : undefined;
      if (lost) {
        // the dead executor's agent may still run in its own process group: stop it
        for (const a of task.attempts) if (a.outcome === 'running' && a.agentPid) killGroup(a.agentPid);
      }
      const done = await reapTask(this.o.store, this.o.roles, task.id, now, lost);
      if (!done) continue;
      n++;
      const reason = lost?.description ?? 'its lease expired';
      await this.o.store.appendLogs(
        task.id,
        [`${done.status === 'queued' ? 're-queued' : done.status}: ${reason}`],
        new Date(),
      );
      this.log('recovered a task from a lost executor', {
        taskId: task.id,
        traceId: task.traceId,
        status: done.status,
        reason,
      });
    }
    if (n > 0) this.wake();
    return n;
  }

  /** The release step (core `releaseBlocked`): blocked tasks whose dependencies ended. */
  private async releaseBlocked(): Promise<void> {
    const now = new Date();
    await releaseAll(this.o.store, await this.o.store.listBlocked(), now);
  }
}

function logsUrlFor(publicUrl: string | undefined, taskId: string): string | undefined {
  return publicUrl
    ? `${publicUrl.replace(/\/+$/, '')}/v1/tasks/${encodeURIComponent(taskId)}/logs`
    : undefined;
}

function killGroup(pid: number) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The shortest time between two scans of the blocked tasks. */
const RELEASE_EVERY_MS = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const emptyUsage = () => ({ inputTokens: 0, outputTokens: 0, costUsd: 0 });

function notConfigured(provider: string): AttemptReport {
  return {
    ok: false,
    errorClass: 'not_installed',
    message: `No provider named "${provider}" is configured.`,
    usage: emptyUsage(),
    changedFiles: [],
  };
}
