import { join } from 'node:path';
import { isPlanning, planningPrompt } from '../core/epics.js';
import type { ProviderErrorClass } from '../core/errors.js';
import type { ModelCall } from '../core/metering.js';
import type { ProviderDriver } from '../core/ports.js';
import type { AgentRole } from '../core/roles.js';
import type { GateOutcome, Task, TaskReview, Usage } from '../core/schemas.js';
import {
  type AttemptGateway,
  applyLedger,
  closeAttemptGateway,
  type LedgerOutcome,
  type OpenAttemptOptions,
  openAttemptGateway,
} from '../gateway/attempts.js';
import type { ModelGateway } from '../gateway/server.js';
import type { RateLimitEvent, TenantBudgetCheck } from '../gateway/session.js';
import { withSpan } from '../telemetry/tracing.js';
import { resolveBinary } from './agent-process.js';
import {
  type AttemptRun,
  type AttemptStep,
  addUsage,
  agentStep,
  commitStep,
  emptyUsage,
  gatesStep,
  pullRequestStep,
  pushStep,
  reviewStep,
  type StepContext,
  scanStep,
  trainStep,
} from './attempt-steps.js';
import { costOf, type ModelPrice } from './drivers/pricing.js';
import type { ForgeEntry } from './forge/resolve.js';
import { GitError } from './git.js';
import { KnownSecrets } from './known-secrets.js';
import { trainModeOf } from './merge-train.js';
import { planStep } from './plan-step.js';
import type { Sandbox } from './sandbox.js';
import {
  type GitWorkspaces,
  PushConflictError,
  type Workspace,
  WorkspaceError,
  workspaceFault,
} from './workspace.js';

/** The model gateway an attempt opens its session on, and what it tells its caller. */
export interface ModelGatewayAccess {
  gateway: ModelGateway;
  /** The session's id in the gateway's logs; default `<task id>/<attempt number>`. */
  attemptId?: string;
  /** The tenant's daily budget, checked before each forwarded call (like `limits.maxCostUsd`). */
  tenantBudget?: () => TenantBudgetCheck | Promise<TenantBudgetCheck>;
  /**
   * A 429/529/503 from upstream, at once: for the breaker and token bucket of `provider` (the
   * attempt's provider, or the review agent's for the reviewer's session).
   */
  onRateLimit?: (event: RateLimitEvent, provider: string) => void;
  /** Each model call as its answer ends (the tenant's spend counter). */
  onCall?: (call: ModelCall) => void;
  /** Where each model call's span hangs (the agent's span while one runs). */
  traceContext?: OpenAttemptOptions['traceContext'];
}

/** A provider as configured: which driver, which binary, which model, which environment. */
export interface ProviderConfig {
  name: string;
  driver: ProviderDriver;
  bin: string;
  model?: string;
  /** Extra variables for this provider's CLI (credentials, base URLs). */
  env: Record<string, string>;
  /** Attempts on this provider at once, across every executor on the store. */
  maxConcurrent?: number;
  /** Price per million tokens; when set it wins over what the CLI reports (e.g. a local model: 0). */
  price?: ModelPrice;
}

export interface AttemptReport {
  ok: boolean;
  errorClass?: ProviderErrorClass;
  message?: string;
  summary?: string;
  sessionId?: string;
  usage: Usage;
  branch?: string;
  commit?: string;
  changedFiles: string[];
  /** Set when retrying cannot help (the task fails with this code). */
  fatalCode?: string;
  /** Time from the start of the attempt to the agent process starting. */
  startLatencyMs?: number;
  /** The quality gates of `.autodev.yml` as they ended (after the repair rounds). */
  gates?: GateOutcome[];
  /** The pull request opened or updated for the pushed branch. */
  pullRequest?: { url: string };
  /** The review agent's last review of the change (`.autodev.yml` `review`). */
  review?: TaskReview;
  /** The model calls of the attempt's gateway session, when it had one. */
  calls?: ModelCall[];
  /** Retry no sooner than this (the provider's rate limit resets then). */
  retryAfterMs?: number;
  /** An epic's planning attempt: the plan its agent gave (checked by the record step). */
  plan?: unknown;
}

export interface AttemptContext {
  task: Task;
  role: AgentRole;
  provider: ProviderConfig;
  workspaces: GitWorkspaces;
  /** Base environment for the agent (PATH, LANG...); the server's own secrets are not passed. */
  baseEnv: Record<string, string>;
  defaultTimeoutSeconds: number;
  log: (line: string) => void;
  signal: AbortSignal;
  keepWorkspace?: boolean;
  onAgentStart?: (pid: number) => void;
  /** Asked right before the push: false when this worker no longer owns the task (a fence). */
  confirmOwnership?: () => Promise<boolean>;
  /**
   * Forges that pull requests are opened on (configured entries; github.com and gitlab.com are
   * known without them). Absent: no pull request is attempted, the pushed branch is the result.
   */
  forges?: readonly ForgeEntry[];
  /**
   * Without a forge, keep the merge train branch (`<prefix>train/<base>`): each task starts on it and
   * advances it, rebased onto it when it moved (merge-train.ts). Absent: each branch starts on the base.
   */
  mergeTrain?: boolean;
  /** Secrets by name, for the forges' tokens. */
  secrets?: Readonly<Record<string, string | undefined>>;
  /** Where the task's logs are read, for the pull request's description. */
  logsUrl?: string;
  /** For tests and proxies: the forges' HTTP client. */
  forgeFetch?: typeof fetch;
  /** Every configured provider by name, for the review agent that `.autodev.yml` names. */
  providers?: Readonly<Record<string, ProviderConfig>>;
  /**
   * The model gateway beside this attempt: the attempt opens a session on it (when its CLI can be
   * proxied), points the agent at it instead of its provider, and its ledger becomes the usage.
   */
  modelGateway?: ModelGatewayAccess;
  /**
   * The platform's own secrets: a change holding one is never pushed, and they are replaced by a
   * marker in every log line, message, summary and pull request this attempt produces.
   */
  knownSecrets?: KnownSecrets;
  /**
   * How agents and gates are contained (sandbox.ts); `unavailable` fails the task before anything
   * runs. Absent: unconfined (unit tests of the attempt itself).
   */
  sandbox?: Sandbox;
}

/**
 * The steps of an attempt once its workspace and gateway session are ready, in order. Each ends the
 * attempt with a report or hands on to the next; the last one reports the success.
 */
export const ATTEMPT_STEPS: readonly (readonly [name: string, step: AttemptStep])[] = [
  ['agent', agentStep],
  // an epic's planning attempt ends here, with its plan
  ['plan', planStep],
  ['gates and repair rounds', gatesStep],
  ['review', reviewStep],
  ['commit', commitStep],
  ['merge train', trainStep],
  ['secret scan', scanStep],
  ['push', pushStep],
  ['pull request', pullRequestStep],
];

/**
 * One attempt of a task: workspace → gateway session → agent → gates/repair → review → commit →
 * merge train → scan → push → pull request. A worktree from the cached mirror, the provider CLI run headless in it
 * under limits (its model calls metered through the gateway), the result committed and pushed on
 * the task's branch, and a pull request opened.
 */
export async function runAttempt(ctx: AttemptContext): Promise<AttemptReport> {
  const known = ctx.knownSecrets ?? new KnownSecrets({});
  const steps: StepContext = { ...ctx, knownSecrets: known, log: (line) => ctx.log(known.redact(line)) };
  const started = Date.now();
  const refused = checkPrerequisites(steps);
  if (typeof refused !== 'string') return redactReport(refused, known);
  const report = await withWorkspace(steps, async (ws) => {
    const held: { run?: AttemptRun } = {};
    const own = await withGatewaySession(steps, (gateway) => {
      held.run = newRun(steps, { started, bin: refused, ws, gateway });
      return runSteps(held.run);
    });
    return held.run ? withReviewerUsage(own, held.run) : own;
  });
  return redactReport(report, known);
}

/** The agent can run here: the provider's binary path, or the report of why not. */
function checkPrerequisites(ctx: StepContext): string | AttemptReport {
  const { provider } = ctx;
  if (ctx.sandbox?.mode === 'unavailable') {
    const message = `Agents cannot run on this server: ${ctx.sandbox.reason}. Install bubblewrap (apt-get install bubblewrap), or set AUTODEV_SANDBOX=off to run agents unconfined.`;
    ctx.log(`attempt failed: ${message}`);
    // the server's fault, not the provider's: no error class, nothing counted against a breaker
    return { ok: false, fatalCode: 'sandbox_unavailable', message, usage: emptyUsage(), changedFiles: [] };
  }
  const bin = resolveBinary(provider.bin, ctx.baseEnv.PATH);
  if (bin) return bin;
  return {
    ok: false,
    errorClass: 'not_installed',
    message: `"${provider.bin}" was not found on PATH. Install the ${provider.name} CLI or set AUTODEV_${provider.name.toUpperCase().replace(/-/g, '_')}_BIN.`,
    usage: emptyUsage(),
    changedFiles: [],
  };
}

/** workspace: a worktree of the task's branch from the cached mirror, removed after the attempt. */
async function withWorkspace(
  ctx: StepContext,
  next: (ws: Workspace) => Promise<AttemptReport>,
): Promise<AttemptReport> {
  const { task, log } = ctx;
  let ws: Workspace | undefined;
  try {
    ws = await withSpan('workspace', () =>
      ctx.workspaces.prepare(task.id, task.repo, task.baseBranch, { train: trainModeOf(ctx) === 'train' }),
    );
    const from = ws.train?.lease === ws.baseCommit ? `the merge train ${ws.train.branch}` : ws.baseBranch;
    log(`workspace ready: branch ${ws.branch} from ${from} at ${ws.baseCommit.slice(0, 12)}`);
    return await next(ws);
  } catch (caught) {
    return faultReport(ctx, caught);
  } finally {
    // off the critical path: the result is recorded while the worktree goes (the next attempt on
    // this mirror waits for it through the mirror lock; a sweep at start removes what a crash left)
    if (ws && !ctx.keepWorkspace) void ctx.workspaces.remove(ws).catch(() => undefined);
  }
}

/**
 * gateway session: when the provider's CLI can be proxied, a session whose credential is the only key
 * the agent gets; closed when the attempt ends (its credential stops working), its ledger the usage.
 */
async function withGatewaySession(
  ctx: StepContext,
  next: (gateway: AttemptGateway | undefined) => Promise<AttemptReport>,
): Promise<AttemptReport> {
  const access = ctx.modelGateway;
  const gw =
    access &&
    openAttemptGateway(access.gateway, {
      attemptId: access.attemptId ?? `${ctx.task.id}/${ctx.task.attempts.length}`,
      driver: ctx.provider.driver,
      env: { ...ctx.baseEnv, ...ctx.provider.env },
      maxCostUsd: ctx.task.limits.maxCostUsd,
      price: ctx.provider.price,
      tenantBudget: access.tenantBudget,
      onRateLimit: access.onRateLimit && ((e) => access.onRateLimit?.(e, ctx.provider.name)),
      onCall: access.onCall,
      log: ctx.log,
      traceContext: access.traceContext,
    });
  if (!gw) return next(undefined);
  let report: AttemptReport;
  let ledger: LedgerOutcome;
  try {
    report = await next(gw);
  } catch (caught) {
    report = faultReport(ctx, caught);
  } finally {
    // the session's credential stops working whatever became of the attempt
    ledger = closeAttemptGateway(gw);
  }
  return applyLedger(report, ledger);
}

/** The attempt's run as the steps share it. */
function newRun(
  ctx: StepContext,
  o: { started: number; bin: string; ws: Workspace; gateway: AttemptGateway | undefined },
): AttemptRun {
  const { task, role, provider } = ctx;
  const { ws } = o;
  const timeoutSeconds = task.limits.timeoutSeconds ?? role.timeoutSeconds ?? ctx.defaultTimeoutSeconds;
  const cpu = task.limits.cpu ?? role.resources.cpu;
  const memoryMiB = task.limits.memoryMiB ?? role.resources.memoryMiB;
  const signal = o.gateway ? AbortSignal.any([ctx.signal, o.gateway.ended]) : ctx.signal;
  const sandbox: AttemptRun['sandbox'] =
    ctx.sandbox && ctx.sandbox.mode !== 'off'
      ? {
          policy: ctx.sandbox,
          run: {
            workdir: ws.dir,
            home: ws.homeDir,
            tmp: join(ws.taskDir, 'tmp'),
            // git's read commands work on the attempt's repository, never write it
            readOnly: [ws.gitDir, join(ws.mirror, 'objects')],
            // through the gateway: no network but it (unless the role has full access)
            gatewayPort: o.gateway ? Number(new URL(o.gateway.pointer.baseUrl).port) : undefined,
          },
        }
      : undefined;
  return {
    ctx,
    started: o.started,
    bin: o.bin,
    signal,
    ws,
    timeoutSeconds,
    sandbox,
    input: {
      prompt: isPlanning(task) ? planningPrompt(task.prompt) : task.prompt,
      workdir: ws.dir,
      homeDir: ws.homeDir,
      model: provider.model,
      maxTurns: role.maxTurns,
      maxBudgetUsd: task.limits.maxCostUsd,
      systemPrompt: role.preamble,
      gateway: o.gateway?.pointer,
    },
    agentRun: {
      bin: o.bin,
      cwd: ws.dir,
      limits: {
        timeoutMs: timeoutSeconds * 1000,
        cpuSeconds: cpu * timeoutSeconds,
        memoryBytes: memoryMiB * 1024 * 1024,
      },
      signal,
      sandbox,
      onLine: (stream, line) =>
        ctx.log(`[${provider.name} ${stream}] ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}`),
    },
    gateway: o.gateway,
    usage: emptyUsage(),
    reviewUsage: emptyUsage(),
    reviewCalls: [],
    changed: [],
    revised: false,
    conflictRounds: 0,
  };
}

/** agent → gates/repair → review → commit → merge train → scan → push → pull request, until one ends the attempt. */
async function runSteps(run: AttemptRun): Promise<AttemptReport> {
  for (const [, step] of ATTEMPT_STEPS) {
    const report = await step(run);
    if (report) return report;
  }
  throw new Error('the attempt ended without a report');
}

/** What a step threw, as the attempt's report: the repository's or the machine's fault, or a crash. */
function faultReport(ctx: StepContext, caught: unknown): AttemptReport {
  // the repository's or the machine's fault, not the provider's: class `workspace`
  const err =
    caught instanceof GitError || isDiskFault(caught)
      ? workspaceFault(ctx.task.repo, 'update', caught)
      : caught;
  const message = err instanceof Error ? err.message : String(err);
  ctx.log(`attempt failed: ${message}`);
  const none = { usage: emptyUsage(), changedFiles: [] };
  if (err instanceof WorkspaceError) return { ok: false, errorClass: 'workspace', message, ...none };
  if (err instanceof PushConflictError)
    return { ok: false, errorClass: 'workspace', fatalCode: 'push_conflict', message, ...none };
  return { ok: false, errorClass: 'crash', message, ...none };
}

/**
 * The task's own agent's report (its session's ledger applied, its provider's price) with what the
 * review agent used added: its session's calls, or what its CLI reported when it had no session.
 */
function withReviewerUsage(report: AttemptReport, run: AttemptRun): AttemptReport {
  const own = priced(report, run.ctx.provider.price);
  const { reviewUsage, reviewCalls } = run;
  if (reviewCalls.length === 0 && reviewUsage.costUsd === 0 && reviewUsage.inputTokens === 0) return own;
  const usage = { ...own.usage };
  addUsage(usage, reviewUsage);
  return { ...own, usage, calls: [...(own.calls ?? []), ...reviewCalls] };
}

/** A provider entry's own price wins over what the CLI reported (e.g. a local model: 0). */
function priced(report: AttemptReport, price: ModelPrice | undefined): AttemptReport {
  return price ? { ...report, usage: { ...report.usage, costUsd: costOf(report.usage, price) } } : report;
}

/** What an attempt reports, with the platform's secrets replaced wherever people will read it. */
function redactReport(r: AttemptReport, known: KnownSecrets): AttemptReport {
  if (known.empty) return r;
  const red = (s: string | undefined) => (s === undefined ? s : known.redact(s));
  return {
    ...r,
    message: red(r.message),
    summary: red(r.summary),
    gates: r.gates?.map((g) => ({ ...g, output: red(g.output) })),
    review: r.review && {
      ...r.review,
      summary: known.redact(r.review.summary),
      comments: r.review.comments.map((c) => ({ ...c, body: known.redact(c.body) })),
    },
  };
}

function isDiskFault(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
