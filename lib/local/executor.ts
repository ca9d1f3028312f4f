import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConflictError } from '../core/errors.js';
import {
  attemptsThisRun,
  DEFAULT_RETRY_POLICY,
  decideAfterAttempt,
  type RetryPolicy,
  transition,
} from '../core/lifecycle.js';
import type { ClaimableTaskStore } from '../core/ports.js';
import {
  admitProvider,
  type BreakerPolicy,
  type ProviderStateStore,
  type RatePolicy,
  recordProviderResult,
} from '../core/provider-health.js';
import type { AgentRole } from '../core/roles.js';
import type { Attempt, Task } from '../core/schemas.js';
import type { TaskNotifier } from '../core/tasks.js';
import { closeAttemptGateway, type LedgerOutcome, openAttemptGateway } from '../gateway/attempts.js';
import { type GatewayOptions, ModelGateway } from '../gateway/server.js';
import { resolveBinary } from '../worker/agent-process.js';
import { costOf } from '../worker/drivers/pricing.js';
import type { ForgeEntry } from '../worker/forge/resolve.js';
import type { KnownSecrets } from '../worker/known-secrets.js';
import { type AttemptReport, type ProviderConfig, runAttempt } from '../worker/run-attempt.js';
import type { Sandbox } from '../worker/sandbox.js';
import type { GitWorkspaces } from '../worker/workspace.js';

export interface ExecutorEvents {
  attemptEnded?(provider: string, report: AttemptReport, durationMs: number): void;
  taskEnded?(task: Task): void;
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
  baseEnv: Record<string, string>;
  /** Circuit breakers and rate limits per provider, shared through the store. */
  health?: { store: ProviderStateStore; breaker: BreakerPolicy; rate: RatePolicy };
  /** Keep worktrees after attempts (for debugging). */
  keepWorkspaces?: boolean;
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
  /** How agents and gates are contained; `unavailable` fails every task with a clear error. */
  sandbox?: Sandbox;
}

interface Running {
  task: Task;
  abort: AbortController;
  done: Promise<void>;
  stopReason?: 'shutdown' | 'lease_lost';
}

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
 * The local workflow executor: a small durable loop over the store. It claims ready tasks under a
 * lease, runs attempts through the worker, and applies the core's decisions with conditional writes.
 */
export class LocalExecutor implements TaskNotifier {
  readonly owner = newOwnerId();
  private readonly running = new Map<string, Running>();
  private started = false;
  private stopping = false;
  private pumping = false;
  private pumpAgain = false;
  private ticker?: NodeJS.Timeout;
  private reaper?: NodeJS.Timeout;
  private gateway?: ModelGateway;

  constructor(private readonly o: ExecutorOptions) {}

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
    this.ticker = setInterval(() => this.wake(), this.o.pollMs ?? 500);
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

  private rateLimited(provider: string, status: number): void {
    const health = this.o.health;
    if (!health) return;
    void recordProviderResult(
      health.store,
      provider,
      false,
      status === 429 ? 'rate_limit' : 'overloaded',
      Date.now(),
      health.breaker,
      health.rate,
    ).catch((e) => this.log('could not record provider health', { provider, err: String(e) }));
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

  private async pump(): Promise<void> {
    await this.releaseBlocked();
    while (!this.stopping && this.running.size < this.o.concurrency) {
      const task = await this.o.store.claimNext(this.owner, this.o.leaseMs, new Date());
      if (!task) return;
      const abort = new AbortController();
      const entry: Running = { task, abort, done: Promise.resolve() };
      entry.done = this.execute(entry)
        .catch((e) => this.log('task execution failed', { taskId: task.id, err: String(e) }))
        .finally(() => {
          this.running.delete(task.id);
          this.wake();
        });
      this.running.set(task.id, entry);
    }
  }

  /** Installed, with credentials (or none needed): worth sending work to. */
  private available = (p: string): boolean => {
    const cfg = this.o.providers[p];
    if (!cfg || resolveBinary(cfg.bin, this.o.baseEnv.PATH) === undefined) return false;
    const needed = cfg.driver.credentialEnv;
    return needed.length === 0 || needed.some((v) => this.o.baseEnv[v] || cfg.env[v]);
  };

  /** Applies `fn` to the latest stored task with a conditional write, re-reading on conflicts. */
  private async mutate(task: Task, fn: (t: Task) => Task | undefined): Promise<Task | undefined> {
    let current: Task | undefined = task;
    for (let i = 0; i < 20 && current; i++) {
      const next = fn(current);
      if (!next) return undefined;
      try {
        await this.o.store.put(next, current.version);
        return next;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        current = await this.o.store.get(task.tenant, task.id);
      }
    }
    return undefined;
  }

  /** Attempts starting in this process, not yet visible in the store (for maxConcurrent). */
  private readonly starting = new Map<string, number>();

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

  private atCapacity(p: string, running: Map<string, number>): boolean {
    const limit = this.o.providers[p]?.maxConcurrent;
    return limit !== undefined && (running.get(p) ?? 0) + (this.starting.get(p) ?? 0) >= limit;
  }

  private release(p: string): void {
    const n = (this.starting.get(p) ?? 0) - 1;
    if (n > 0) this.starting.set(p, n);
    else this.starting.delete(p);
  }

  /**
   * Picks the provider for the next attempt and asks its circuit breaker and rate limit for
   * admission. When none admits work now, the task goes back to waiting (no attempt is used).
   */
  private async admit(task: Task, role: AgentRole, log: (l: string) => void): Promise<string | undefined> {
    const preferred = task.provider && task.attempts.length > 0 ? task.provider : undefined;
    const fallback = task.requestedProvider ?? role.providers[0] ?? 'claude';
    const candidates = task.requestedProvider
      ? [task.requestedProvider]
      : [...new Set([preferred, ...role.providers.filter(this.available)].filter((p): p is string => !!p))];
    if (candidates.length === 0) candidates.push(preferred ?? fallback);
    const refusals: string[] = [];
    let waitMs = Number.POSITIVE_INFINITY;
    const running = await this.runningByProvider(task.id);
    for (const p of candidates) {
      if (this.atCapacity(p, running)) {
        refusals.push(`${p} (at its limit of ${this.o.providers[p]?.maxConcurrent} at once)`);
        waitMs = Math.min(waitMs, 1000);
        continue;
      }
      const a = this.o.health
        ? await admitProvider(this.o.health.store, p, Date.now(), this.o.health.breaker, this.o.health.rate)
        : ({ ok: true } as const);
      // checked again without an await in between, so two tasks starting here cannot both take the last place
      if (a.ok && !this.atCapacity(p, running)) {
        if (refusals.length) log(`skipping ${refusals.join(', ')}`);
        this.starting.set(p, (this.starting.get(p) ?? 0) + 1);
        return p;
      }
      if (a.ok) {
        refusals.push(`${p} (at its limit of ${this.o.providers[p]?.maxConcurrent} at once)`);
        waitMs = Math.min(waitMs, 1000);
        continue;
      }
      refusals.push(
        `${p} (${a.reason === 'breaker_open' ? 'circuit breaker open' : 'rate limit'}, ${Math.ceil(a.retryAfterMs / 1000)} s)`,
      );
      waitMs = Math.min(waitMs, a.retryAfterMs);
    }
    const notBefore = Date.now() + Math.max(10, waitMs);
    const deferred = await this.mutate(task, (t) =>
      this.ownsLease(t)
        ? transition({ ...t, lease: undefined }, 'retrying', { notBefore }, new Date())
        : undefined,
    );
    if (deferred) {
      log(`waiting: no provider admits work now: ${refusals.join(', ')}`);
      setTimeout(() => this.wake(), notBefore - Date.now() + 5).unref();
    }
    return undefined;
  }

  private ownsLease = (t: Task) => t.status === 'running' && t.lease?.owner === this.owner;

  private async execute(entry: Running): Promise<void> {
    const { task } = entry;
    const logBuffer: string[] = [];
    let flushing: Promise<void> = Promise.resolve();
    const flush = () => {
      const lines = logBuffer.splice(0);
      flushing = flushing
        .then(() => this.o.store.appendLogs(task.id, lines, new Date()))
        .catch(() => undefined);
      return flushing;
    };
    const flushTimer = setInterval(flush, 200);
    const log = (line: string) => logBuffer.push(this.o.knownSecrets?.redact(line) ?? line);
    try {
      const role = this.o.roles[task.role];
      if (!role) {
        await this.mutate(task, (t) =>
          this.ownsLease(t)
            ? transition(
                { ...t, lease: undefined },
                'failed',
                { error: { code: 'unknown_role', message: `The role "${t.role}" is no longer configured.` } },
                new Date(),
              )
            : undefined,
        );
        return;
      }
      const provider = await this.admit(task, role, log);
      if (!provider) return;
      const number = task.attempts.length + 1;
      const startedAt = new Date();
      const attempt: Attempt = {
        number,
        provider,
        executor: this.owner,
        startedAt: startedAt.toISOString(),
        outcome: 'running',
      };
      const started = await this.mutate(task, (t) =>
        this.ownsLease(t)
          ? {
              ...t,
              provider,
              attempts: [...t.attempts, attempt],
              version: t.version + 1,
              updatedAt: startedAt.toISOString(),
            }
          : undefined,
      ).finally(() => this.release(provider)); // the attempt is in the store now (or not at all)
      if (!started) return;
      log(`attempt ${attemptsThisRun(started)} of ${role.maxAttempts} on ${provider}`);
      if (started.cancelRequested) entry.abort.abort();
      const heartbeat = setInterval(
        () => {
          void this.mutate(started, (t) => {
            if (!this.ownsLease(t)) {
              entry.stopReason = 'lease_lost';
              entry.abort.abort();
              return undefined;
            }
            if (t.cancelRequested) entry.abort.abort();
            return {
              ...t,
              lease: { owner: this.owner, expiresAt: Date.now() + this.o.leaseMs },
              version: t.version + 1,
            };
          }).catch(() => undefined);
        },
        Math.max(250, this.o.leaseMs / 3),
      );
      let report: AttemptReport;
      let ledger: LedgerOutcome | undefined;
      const cfg = this.o.providers[provider];
      const gw =
        cfg && this.gateway
          ? openAttemptGateway(this.gateway, {
              attemptId: `${started.id}/${number}`,
              driver: cfg.driver,
              env: { ...this.o.baseEnv, ...cfg.env },
              maxCostUsd: started.limits.maxCostUsd,
              price: cfg.price,
              // the provider's breaker hears of a rate limit at once, not when the CLI gives up
              onRateLimit: (e) => this.rateLimited(provider, e.status),
              log,
            })
          : undefined;
      try {
        report = cfg
          ? await runAttempt({
              task: started,
              role,
              provider: cfg,
              workspaces: this.o.workspaces,
              baseEnv: this.o.baseEnv,
              defaultTimeoutSeconds: this.o.defaultTimeoutSeconds,
              log,
              signal: gw ? AbortSignal.any([entry.abort.signal, gw.ended]) : entry.abort.signal,
              gateway: gw?.pointer,
              keepWorkspace: this.o.keepWorkspaces,
              forges: this.o.forges,
              providers: this.o.providers,
              sandbox: this.o.sandbox,
              secrets: this.o.secrets,
              knownSecrets: this.o.knownSecrets,
              logsUrl: logsUrlFor(this.o.publicUrl?.(), started.id),
              confirmOwnership: async () => {
                const fenced = await this.mutate(started, (t) =>
                  this.ownsLease(t) && !t.cancelRequested ? { ...t, version: t.version + 1 } : undefined,
                );
                if (!fenced) {
                  const now = await this.o.store.get(started.tenant, started.id);
                  if (!now || !this.ownsLease(now)) entry.stopReason = 'lease_lost';
                }
                return fenced !== undefined;
              },
              onAgentStart: (pid) => {
                this.o.events?.agentStarted?.(Date.now() - startedAt.getTime());
                void this.mutate(started, (t) =>
                  this.ownsLease(t)
                    ? {
                        ...t,
                        attempts: t.attempts.map((a) => (a.number === number ? { ...a, agentPid: pid } : a)),
                        version: t.version + 1,
                      }
                    : undefined,
                ).catch(() => undefined);
              },
            })
          : {
              ok: false,
              errorClass: 'not_installed',
              message: `No provider named "${provider}" is configured.`,
              usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
              changedFiles: [],
            };
      } finally {
        clearInterval(heartbeat);
        // the session's credential stops working whatever became of the attempt
        ledger = gw && closeAttemptGateway(gw);
      }
      if (ledger) report = withLedger(report, ledger);
      const price = this.o.providers[provider]?.price;
      if (price) report.usage = { ...report.usage, costUsd: costOf(report.usage, price) };
      this.o.events?.attemptEnded?.(provider, report, Date.now() - startedAt.getTime());
      if (this.o.health && !entry.abort.signal.aborted) {
        await recordProviderResult(
          this.o.health.store,
          provider,
          report.ok,
          report.errorClass,
          Date.now(),
          this.o.health.breaker,
          this.o.health.rate,
        ).catch((e) => this.log('could not record provider health', { provider, err: String(e) }));
      }
      await this.record(entry, started, attempt, report, role, log);
    } finally {
      clearInterval(flushTimer);
      await flush();
    }
  }

  private async record(
    entry: Running,
    task: Task,
    attempt: Attempt,
    report: AttemptReport,
    role: AgentRole,
    log: (l: string) => void,
  ) {
    const endedAt = new Date();
    const ended: Attempt = {
      ...attempt,
      endedAt: endedAt.toISOString(),
      outcome: report.ok ? 'succeeded' : 'failed',
      errorClass: report.ok ? undefined : report.errorClass,
      message: report.message,
      usage: report.usage,
      sessionId: report.sessionId,
      calls: report.calls,
    };
    if (entry.stopReason === 'lease_lost') {
      log('this executor lost the task lease; another one owns the task now');
      return;
    }
    const final = await this.mutate(task, (t) => {
      if (!this.ownsLease(t)) return undefined;
      const attempts = t.attempts.map((a) => (a.number === attempt.number ? ended : a));
      const usage = {
        inputTokens: t.usage.inputTokens + report.usage.inputTokens,
        outputTokens: t.usage.outputTokens + report.usage.outputTokens,
        cachedInputTokens: (t.usage.cachedInputTokens ?? 0) + (report.usage.cachedInputTokens ?? 0),
        costUsd: Math.round((t.usage.costUsd + report.usage.costUsd) * 1e6) / 1e6,
      };
      const base = { ...t, attempts, usage, lease: undefined };
      if (entry.stopReason === 'shutdown' && !t.cancelRequested) {
        return transition(
          base,
          'queued',
          {
            attempts: attempts.map((a) =>
              a.number === attempt.number
                ? {
                    ...ended,
                    outcome: 'abandoned' as const,
                    errorClass: undefined,
                    message: 'the server stopped before the attempt finished',
                  }
                : a,
            ),
          },
          endedAt,
        );
      }
      const decision = decideAfterAttempt({
        task: base,
        role,
        result: report,
        available: this.available,
        policy: this.o.retryPolicy ?? DEFAULT_RETRY_POLICY,
      });
      const durationMs = endedAt.getTime() - Date.parse(t.createdAt);
      switch (decision.kind) {
        case 'succeed':
          return transition(
            base,
            'succeeded',
            {
              summary: report.summary,
              branch: report.branch,
              commit: report.commit,
              pullRequest: report.pullRequest ?? t.pullRequest,
              gates: report.gates,
              review: report.review,
              durationMs,
              error: undefined,
            },
            endedAt,
          );
        case 'cancel':
          return transition(
            {
              ...base,
              attempts: attempts.map((a) =>
                a.number === attempt.number ? { ...ended, outcome: 'cancelled' as const } : a,
              ),
            },
            'cancelled',
            {
              durationMs,
              error: { code: 'cancelled', message: 'Cancelled while running; the agent was stopped.' },
            },
            endedAt,
          );
        case 'retry':
          log(`will retry: ${decision.reason}`);
          return transition(
            base,
            'retrying',
            { provider: decision.provider, notBefore: endedAt.getTime() + decision.delayMs },
            endedAt,
          );
        case 'fail':
          return transition(
            base,
            'failed',
            {
              durationMs,
              gates: report.gates ?? t.gates,
              error: { code: decision.code, message: decision.message },
            },
            endedAt,
          );
      }
    });
    if (final) {
      log(`task ${final.status}${final.error ? `: ${final.error.message}` : ''}`);
      if (final.status === 'succeeded' || final.status === 'failed' || final.status === 'cancelled')
        this.o.events?.taskEnded?.(final);
      if (final.status === 'retrying')
        setTimeout(() => this.wake(), Math.max(0, (final.notBefore ?? 0) - Date.now()) + 5).unref();
    }
  }

  /** Re-queues (or fails) running tasks whose lease expired or whose owner process is gone. */
  async reap(): Promise<number> {
    let n = 0;
    const now = Date.now();
    for (const task of await this.o.store.listRunning()) {
      const owner = task.lease?.owner ?? '';
      if (this.running.has(task.id)) continue;
      const alive = ownerAlive(owner, this.owner);
      const expired = (task.lease?.expiresAt ?? 0) < now;
      // a live owner keeps its task while its lease holds; a dead one loses it at once
      if (!expired && alive !== false) continue;
      const reason = alive === false ? `its executor (${owner}) is gone` : 'its lease expired';
      if (alive === false) {
        // the dead executor's agent may still run in its own process group: stop it
        for (const a of task.attempts) if (a.outcome === 'running' && a.agentPid) killGroup(a.agentPid);
      }
      const role = this.o.roles[task.role];
      const done = await this.mutate(task, (t) => {
        if (t.status !== 'running' || t.lease?.owner !== owner) return undefined;
        const attempts = t.attempts.map((a) =>
          a.outcome === 'running'
            ? {
                ...a,
                outcome: 'abandoned' as const,
                endedAt: new Date(now).toISOString(),
                message: `abandoned: ${reason}`,
              }
            : a,
        );
        if (t.cancelRequested)
          return transition(
            { ...t, attempts, lease: undefined },
            'cancelled',
            { error: { code: 'cancelled', message: 'Cancelled; its executor had stopped.' } },
            new Date(now),
          );
        if (attemptsThisRun({ ...t, attempts }) >= (role?.maxAttempts ?? 1)) {
          return transition(
            { ...t, attempts, lease: undefined },
            'failed',
            {
              error: {
                code: 'abandoned',
                message: `The task was running when ${reason}, and it has no attempts left.`,
              },
            },
            new Date(now),
          );
        }
        return transition({ ...t, attempts, lease: undefined }, 'queued', {}, new Date(now));
      });
      if (done) {
        n++;
        await this.o.store.appendLogs(
          task.id,
          [`${done.status === 'queued' ? 're-queued' : done.status}: ${reason}`],
          new Date(),
        );
        this.log('recovered a task from a lost executor', { taskId: task.id, status: done.status, reason });
      }
    }
    if (n > 0) this.wake();
    return n;
  }

  /** Queues blocked tasks whose dependencies all succeeded; fails those with a failed dependency. */
  private async releaseBlocked(): Promise<void> {
    for (const task of await this.o.store.listBlocked()) {
      const deps = await Promise.all(task.dependsOn.map((d) => this.o.store.get(task.tenant, d)));
      const failed = deps.find((d) => !d || d.status === 'failed' || d.status === 'cancelled');
      if (failed || deps.every((d) => d?.status === 'succeeded')) {
        await this.mutate(task, (t) =>
          t.status !== 'blocked'
            ? undefined
            : failed
              ? transition(
                  t,
                  'failed',
                  {
                    error: {
                      code: 'dependency_failed',
                      message: `Dependency ${failed?.id ?? '?'} ended ${failed?.status ?? 'missing'}.`,
                    },
                  },
                  new Date(),
                )
              : transition(t, 'queued', {}, new Date()),
        );
      }
    }
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An attempt's report with its gateway session's ledger: the usage is the ledger's sum (when any
 * call went through), and a session that ended itself decides the outcome.
 */
function withLedger(report: AttemptReport, ledger: LedgerOutcome): AttemptReport {
  const out: AttemptReport = { ...report, calls: ledger.calls };
  if (ledger.usage) out.usage = ledger.usage;
  if (ledger.fatalCode)
    return {
      ...out,
      ok: false,
      errorClass: ledger.fatalCode === 'budget_exceeded' ? 'budget' : undefined,
      fatalCode: ledger.fatalCode,
      message: ledger.message,
    };
  if (ledger.retryAfterMs !== undefined)
    return {
      ...out,
      ok: false,
      errorClass: 'rate_limit',
      retryAfterMs: ledger.retryAfterMs,
      message: ledger.message,
    };
  return out;
}
