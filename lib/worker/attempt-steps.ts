import { type ProviderErrorClass, ValidationError } from '../core/errors.js';
import { MERGE_CONFLICT } from '../core/merge-train.js';
import type { ModelCall } from '../core/metering.js';
import type { DriverInput, ProcessOutput } from '../core/ports.js';
import type { GateOutcome, Task, TaskReview, Usage } from '../core/schemas.js';
import type { AttemptGateway } from '../gateway/attempts.js';
import { withAgentSpan, withSpan } from '../telemetry/tracing.js';
import { type AgentProcessOptions, resolveBinary, runAgentProcess } from './agent-process.js';
import { publishPullRequest } from './forge/publish.js';
import {
  AUTODEV_FILE,
  type AutodevConfig,
  type GateLoopResult,
  type GateResult,
  readAutodevConfig,
  runGatesWithRepairs,
  tail,
} from './gates.js';
import { git } from './git.js';
import type { KnownSecrets } from './known-secrets.js';
import { catchUpBeforePush, pushOnTrain, type TrainDeps } from './merge-train.js';
import { type ReviewVerdict, revisionPrompt } from './review.js';
import { runMeteredReview } from './review-session.js';
import type { AttemptContext, AttemptReport } from './run-attempt.js';
import { describeFindings, diffForScan, scanDiff } from './secret-scan.js';
import type { StagedChange, Workspace } from './workspace.js';

/**
 * The steps of one attempt after its workspace and gateway session are ready: each takes the
 * attempt's run (what earlier steps found) and either ends the attempt with a report or lets the
 * next step go on (undefined). run-attempt.ts lists them in order.
 */
export type AttemptStep = (run: AttemptRun) => Promise<AttemptReport | undefined>;

/** The attempt's context as the steps see it: log lines already redacted. */
export type StepContext = AttemptContext & { knownSecrets: KnownSecrets };

/** What the steps share: the attempt's fixed settings, then what each step found. */
export interface AttemptRun {
  readonly ctx: StepContext;
  /** When the attempt started (ms since epoch). */
  readonly started: number;
  /** The provider CLI's path. */
  readonly bin: string;
  /** Stops the attempt: the caller's signal, or the gateway session's end (budget, loop, far rate limit). */
  readonly signal: AbortSignal;
  readonly ws: Workspace;
  /** What the driver is given for the task's own agent. */
  readonly input: DriverInput;
  readonly timeoutSeconds: number;
  /** How every agent process of the attempt runs (binary, limits, sandbox, log lines). */
  readonly agentRun: Omit<AgentProcessOptions, 'args' | 'env' | 'stdin' | 'onStart'>;
  readonly sandbox: AgentProcessOptions['sandbox'];
  /** The attempt's gateway session (the task's own agent's), when its CLI is proxied. */
  readonly gateway?: AttemptGateway;
  /** What the task's own agent used so far (its first run, repair and review rounds), as its CLI reported it. */
  usage: Usage;
  /** What the review agent used: its gateway sessions' ledgers, or what its CLI reported without one. */
  reviewUsage: Usage;
  /** The model calls of the review agent's gateway sessions (added to the attempt's ledger). */
  reviewCalls: ModelCall[];
  sessionId?: string;
  startLatencyMs?: number;
  summary?: string;
  /** Files the agent changed (before the gates and repair rounds). */
  changed: string[];
  /** The worktree as staged after the agent's run; dropped when anything runs in the worktree again. */
  staged?: StagedChange;
  config?: AutodevConfig;
  gateLoop?: GateLoopResult;
  review?: TaskReview;
  reviewVerdict?: ReviewVerdict;
  /** A review round changed the work again. */
  revised: boolean;
  committed?: { commit?: string; files: string[] };
  /**
   * The diff the commit's staging took (what it adds on top of `base`): the secret scan's, while the
   * branch is still at `commit` on that base. A rebase or an amend makes another commit id.
   */
  committedDiff?: { commit: string; base: string; diff: string };
  /** The commit on the pushed branch (after a rebase, not the one committed). */
  pushedCommit?: string;
  /** Rounds the task's agent was given a merge conflict (merge-train.ts): one at most. */
  conflictRounds: number;
}

/** What gates see of the environment: basics, never credentials. */
const GATE_ENV =
  /^(PATH|LANG|LC_[A-Z]+|TZ|TMPDIR|TERM|CI|SSL_CERT_FILE|NODE_EXTRA_CA_CERTS|HTTPS?_PROXY|NO_PROXY)$/;

/** Characters of a failing gate's output kept on the task. */
const GATE_OUTPUT_ON_TASK = 2000;

/** A repair or review round's agent run failed: the attempt ends with its error class. */
class RepairFailed extends Error {
  constructor(
    readonly errorClass: ProviderErrorClass | undefined,
    message: string,
    /** The CLI stopped itself for a reason no retry mends (its own loop detection). */
    readonly fatalCode?: string,
  ) {
    super(message);
  }
}

export const emptyUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, costUsd: 0 });

/** The fields every report of a run carries. */
function base(run: AttemptRun) {
  return {
    usage: run.usage,
    sessionId: run.sessionId,
    startLatencyMs: run.startLatencyMs,
    changedFiles: [] as string[],
  };
}

function stopped(run: AttemptRun, message = 'the attempt was stopped'): AttemptReport {
  return { ...base(run), ok: false, errorClass: 'crash', message };
}

function howItEnded(out: ProcessOutput, timeoutSeconds: number): string {
  return out.timedOut
    ? `ran past its ${timeoutSeconds} s limit and was killed`
    : out.signal
      ? `was killed by ${out.signal}`
      : `exited with code ${out.exitCode}`;
}

/** agent: the provider CLI, headless in the worktree, under the attempt's limits. */
export const agentStep: AttemptStep = async (run) => {
  const { ctx, input } = run;
  const { provider, log } = ctx;
  const cmd = provider.driver.command(input);
  log(
    `starting ${provider.name} (${run.bin}) with a ${run.timeoutSeconds} s time limit, ${ctx.task.limits.cpu ?? ctx.role.resources.cpu} CPU, ${ctx.task.limits.memoryMiB ?? ctx.role.resources.memoryMiB} MiB`,
  );
  const output = await withAgentSpan(ctx.task.id, provider.name, () =>
    runAgentProcess({
      ...run.agentRun,
      args: cmd.args,
      env: { ...ctx.baseEnv, HOME: run.ws.homeDir, ...provider.env, ...cmd.env },
      stdin: cmd.stdin,
      onStart: (pid) => {
        run.startLatencyMs = Date.now() - run.started;
        log(`agent process ${pid} started`);
        ctx.onAgentStart?.(pid);
      },
    }),
  );
  const parsed = provider.driver.parse(output, input);
  run.usage = { ...emptyUsage(), ...stripUndefined(parsed.usage ?? {}) };
  run.sessionId = parsed.sessionId;
  if (run.signal.aborted) return stopped(run);
  if (parsed.fatalCode) {
    const message = parsed.errorMessage ?? `${provider.name} stopped the run itself (${parsed.fatalCode})`;
    log(`agent stopped: ${message}`);
    return { ...base(run), ok: false, fatalCode: parsed.fatalCode, message };
  }
  const errorClass = provider.driver.classify(output, parsed);
  if (errorClass) {
    const message = `${provider.name} ${howItEnded(output, run.timeoutSeconds)}${parsed.errorMessage ? `: ${parsed.errorMessage}` : ''}`;
    log(`agent failed (${errorClass}): ${message}`);
    return { ...base(run), ok: false, errorClass, message };
  }
  log(
    `agent finished in ${Date.now() - run.started} ms${run.usage.costUsd ? `, cost $${run.usage.costUsd.toFixed(4)}` : ''}`,
  );
  run.summary = parsed.text === undefined ? undefined : ctx.knownSecrets.redact(parsed.text.trim());
  run.staged = await ctx.workspaces.stage(run.ws);
  run.changed = run.staged.files;
  return undefined;
};

/** The task's own agent again in the same worktree (a repair round, a review round); throws RepairFailed. */
async function rerun(run: AttemptRun, prompt: string, what: string, given: string): Promise<void> {
  const { ctx } = run;
  run.staged = undefined;
  const { provider, log } = ctx;
  const input: DriverInput = { ...run.input, prompt };
  const cmd = provider.driver.command(input);
  log(`${what}: starting ${provider.name} with ${given}`);
  const out = await withAgentSpan(ctx.task.id, provider.name, () =>
    runAgentProcess({
      ...run.agentRun,
      args: cmd.args,
      env: { ...ctx.baseEnv, HOME: input.homeDir, ...provider.env, ...cmd.env },
      stdin: cmd.stdin,
      onStart: (pid) => log(`agent process ${pid} started (${what})`),
    }),
  );
  const p = provider.driver.parse(out, input);
  addUsage(run.usage, p.usage);
  if (run.signal.aborted) throw new RepairFailed('crash', 'the attempt was stopped');
  if (p.fatalCode)
    throw new RepairFailed(undefined, `${p.errorMessage ?? provider.name} (in ${what})`, p.fatalCode);
  const cls = provider.driver.classify(out, p);
  if (cls) {
    throw new RepairFailed(
      cls,
      `${provider.name} ${howItEnded(out, run.timeoutSeconds)} in ${what}${p.errorMessage ? `: ${p.errorMessage}` : ''}`,
    );
  }
  log(`${what}: agent finished${p.text ? `: ${firstLine(p.text, 200)}` : ''}`);
}

/** The quality gates of `.autodev.yml`, with repair rounds by the task's agent. */
function runGates(run: AttemptRun, config: AutodevConfig): Promise<GateLoopResult> {
  const { ctx } = run;
  const env: Record<string, string> = { HOME: run.ws.homeDir };
  for (const [k, v] of Object.entries(ctx.baseEnv)) if (GATE_ENV.test(k)) env[k] = v;
  run.staged = undefined;
  return withSpan('gates', () =>
    runGatesWithRepairs({
      workdir: run.ws.dir,
      config,
      taskPrompt: ctx.task.prompt,
      env,
      signal: run.signal,
      sandbox: run.sandbox,
      log: ctx.log,
      repair: (prompt, n) => rerun(run, prompt, `repair round ${n}`, 'the failing checks'),
    }),
  );
}

function failingGates(loop: GateLoopResult | undefined): string[] {
  return loop?.results.filter((g) => !g.ok).map((g) => g.name) ?? [];
}

/** Ends the attempt when the gates still fail and no draft is wanted; logs how they ended otherwise. */
function judgeGates(run: AttemptRun, after: string): AttemptReport | undefined {
  const { gateLoop, config } = run;
  if (!gateLoop || !config) return undefined;
  const failing = failingGates(gateLoop);
  if (failing.length > 0 && !config.draftOnFailure) {
    const message = `Quality gates failed after ${after}${gateLoop.rounds} repair round(s): ${failing.join(', ')}. Nothing was pushed (draftOnFailure is false).`;
    run.ctx.log(message);
    return {
      ...base(run),
      ok: false,
      fatalCode: 'gates_failed',
      message,
      gates: gateOutcomes(gateLoop.results),
      review: run.review,
    };
  }
  run.ctx.log(
    failing.length > 0
      ? `quality gates still fail (${failing.join(', ')}): pushing for a draft pull request`
      : 'quality gates passed',
  );
  return undefined;
}

/** gates: `.autodev.yml` read from the change, its gates run with repair rounds. */
export const gatesStep: AttemptStep = async (run) => {
  const { ctx } = run;
  if (run.changed.length === 0) return undefined;
  try {
    run.config = readAutodevConfig(run.ws.dir);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    ctx.log(`attempt failed: ${err.message}`);
    return {
      ...base(run),
      ok: false,
      fatalCode: 'invalid_autodev_config',
      message: `${err.message}. Fix ${AUTODEV_FILE} in the repository; the task was not retried.`,
    };
  }
  if (run.config.gates.length === 0) return undefined;
  ctx.log(`running ${run.config.gates.length} quality gate(s) from ${AUTODEV_FILE}`);
  try {
    run.gateLoop = await runGates(run, run.config);
  } catch (err) {
    if (!(err instanceof RepairFailed)) throw err;
    ctx.log(`agent failed (${err.errorClass ?? err.fatalCode}): ${err.message}`);
    return {
      ...base(run),
      ok: false,
      errorClass: err.errorClass,
      fatalCode: err.fatalCode,
      message: err.message,
    };
  }
  if (run.signal.aborted) return stopped(run);
  return judgeGates(run, '');
};

/**
 * review (`.autodev.yml` `review`): once the gates pass, another provider's agent reviews the change;
 * with `rounds: 1` a request for changes gives the task's agent the review once, then the gates and
 * the review run again. A reviewer's failure is recorded and logged, never fails the attempt.
 */
export const reviewStep: AttemptStep = async (run) => {
  const { ctx, ws } = run;
  const config = run.config;
  if (!config?.review || run.changed.length === 0) return undefined;
  const { provider: reviewerName, rounds } = config.review;
  const reviewer = ctx.providers?.[reviewerName];
  for (let round = 0; ; round++) {
    if (run.gateLoop && !run.gateLoop.ok) {
      ctx.log('no review: the quality gates fail');
      return undefined;
    }
    // the reviewer's model calls go through a gateway session of its own, metered into the attempt
    run.staged = undefined;
    const reviewed = await withSpan('review', () =>
      runMeteredReview(run, {
        task: ctx.task,
        reviewer,
        reviewerName,
        bin: reviewer ? resolveBinary(reviewer.bin, ctx.baseEnv.PATH) : undefined,
        workdir: ws.dir,
        worktree: ws,
        homeDir: ws.homeDir,
        baseCommit: ws.baseCommit,
        baseEnv: ctx.baseEnv,
        limits: run.agentRun.limits,
        signal: run.signal,
        sandbox: run.sandbox,
        log: ctx.log,
        maxTurns: ctx.role.maxTurns,
        maxBudgetUsd: ctx.task.limits.maxCostUsd,
      }),
    );
    run.review = reviewed.review;
    run.reviewVerdict = reviewed.verdict;
    if (run.signal.aborted) return stopped(run);
    if (reviewed.budgetExceeded) {
      ctx.log(`attempt failed: ${reviewed.budgetExceeded}`);
      return {
        ...base(run),
        ok: false,
        errorClass: 'budget',
        fatalCode: 'budget_exceeded',
        message: reviewed.budgetExceeded,
        review: run.review,
      };
    }
    if (reviewed.verdict?.verdict !== 'request_changes' || round >= rounds) return undefined;
    try {
      await rerun(
        run,
        revisionPrompt(ctx.task.prompt, reviewed.verdict),
        `review round ${round + 1}`,
        'the review comments',
      );
      run.revised = true;
      if (config.gates.length > 0) {
        ctx.log(`running ${config.gates.length} quality gate(s) from ${AUTODEV_FILE} again`);
        run.gateLoop = await runGates(run, config);
      }
    } catch (err) {
      if (!(err instanceof RepairFailed)) throw err;
      ctx.log(`agent failed (${err.errorClass ?? err.fatalCode}): ${err.message}`);
      return {
        ...base(run),
        ok: false,
        errorClass: err.errorClass,
        fatalCode: err.fatalCode,
        message: err.message,
        review: run.review,
      };
    }
    if (run.signal.aborted) return stopped(run);
    const judged = judgeGates(run, 'the review round and ');
    if (judged) return judged;
  }
};

/** commit: what changed, on the task's branch; nothing changed ends the attempt as a success. */
export const commitStep: AttemptStep = async (run) => {
  const { ctx, ws } = run;
  const { result, staged } = await withSpan('commit', async () => {
    // staged after the agent, unless gates, repair or review rounds ran in the worktree since
    const staged = run.staged ?? (await ctx.workspaces.stage(ws));
    const subject = `AutoDev: ${firstLine(ctx.task.prompt, 64)}`;
    const body = `${run.summary ?? ''}\n\nRole: ${ctx.task.role}\nProvider: ${ctx.provider.name}`;
    return { result: await ctx.workspaces.commitStaged(ws, staged, subject, body), staged };
  });
  if (!result.changed) {
    ctx.log('the agent changed nothing: no commit, no push');
    return {
      ...base(run),
      ok: true,
      gates: gatesOf(run),
      summary: run.summary
        ? `No changes. ${run.summary}`
        : 'No changes: the agent left the repository as it was.',
    };
  }
  ctx.log(`committed ${result.files.length} file(s) as ${result.commit?.slice(0, 12)}`);
  run.committed = { commit: result.commit, files: result.files };
  if (result.commit) run.committedDiff = { commit: result.commit, base: staged.base, diff: staged.diff };
  return undefined;
};

/** scan: a change holding a secret is never pushed. */
export const scanStep: AttemptStep = async (run) => {
  const { ws, committedDiff: taken } = run;
  // the diff staging took, while the branch is still that commit on that base (no rebase, no amend)
  const diff =
    taken && taken.base === ws.baseCommit && taken.commit === (await run.ctx.workspaces.head(ws))
      ? taken.diff
      : await diffForScan(ws, ws.baseCommit);
  const findings = scanDiff(diff, { known: run.ctx.knownSecrets });
  if (findings.length > 0) {
    const message = describeFindings(findings);
    run.ctx.log(`secret scan: ${message}`);
    return { ...base(run), ok: false, fatalCode: 'secret_detected', message, gates: gatesOf(run) };
  }
  run.ctx.log(`secret scan: nothing found; pushing ${run.ws.branch}`);
  return undefined;
};

/** What the merge train uses of these steps. */
const TRAIN: TrainDeps = {
  conflictRound: async (run, prompt) => {
    try {
      await rerun(run, prompt, 'conflict round', 'the merge conflict');
      return run.signal.aborted ? stopped(run) : undefined;
    } catch (err) {
      if (!(err instanceof RepairFailed)) throw err;
      run.ctx.log(`agent failed (${err.errorClass}): ${err.message}`);
      return { ...base(run), ok: false, errorClass: err.errorClass, message: err.message };
    }
  },
  gates: (run) => gatesStep(run),
  scan: (run) => scanStep(run),
  conflict: (run, message) => {
    run.ctx.log(`attempt failed (${MERGE_CONFLICT}): ${message}`);
    return { ...base(run), ok: false, fatalCode: MERGE_CONFLICT, message, gates: gatesOf(run) };
  },
  stopped: (run, message) => stopped(run, message),
};

/** merge train: with a forge, the change is put on top of a base branch that moved (merge-train.ts). */
export const trainStep: AttemptStep = (run) => catchUpBeforePush(run, TRAIN);

/** push: the branch, once this worker still owns the task (a fence); the merge train's lease with it. */
export const pushStep: AttemptStep = async (run) => {
  const { ctx, ws } = run;
  if (run.signal.aborted || (ctx.confirmOwnership && !(await ctx.confirmOwnership()))) {
    return stopped(run, 'the attempt was stopped before its push');
  }
  const landed = await pushOnTrain(run, TRAIN);
  if ('report' in landed) return landed.report;
  const { pushed } = landed;
  if (pushed.replaced) ctx.log(`replaced this task's earlier push (${pushed.replaced.slice(0, 12)})`);
  if (pushed.rebasedOnto) ctx.log(`the branch had moved; rebased onto ${pushed.rebasedOnto.slice(0, 12)}`);
  run.pushedCommit = pushed.rebasedOnto
    ? (await git(['rev-parse', 'HEAD'], { worktree: ws })).trim()
    : run.committed?.commit;
  ctx.log(`pushed ${ws.branch}`);
  return undefined;
};

/** pull request: opened or updated on the forge (when forges are configured); the attempt's success report. */
export const pullRequestStep: AttemptStep = async (run) => {
  const { ctx, ws } = run;
  let pullRequest: { url: string } | undefined;
  const forges = ctx.forges;
  if (forges) {
    const published = await withSpan('pull request', () =>
      publishPullRequest({
        task: recordedTask(run),
        branch: ws.branch,
        base: ws.baseBranch,
        gates: run.gateLoop?.results ?? [],
        draftOnFailure: run.config?.draftOnFailure ?? true,
        review: run.reviewVerdict,
        forges,
        secrets: ctx.secrets ?? {},
        logsUrl: ctx.logsUrl,
        fetch: ctx.forgeFetch,
        log: ctx.log,
        redact: (text) => ctx.knownSecrets.redact(text),
      }),
    );
    if (published.outcome === 'opened' || published.outcome === 'updated') {
      pullRequest = { url: published.pullRequest.url };
    }
  }
  const failing = failingGates(run.gateLoop);
  return {
    ...base(run),
    ok: true,
    summary: run.summary,
    message: run.gateLoop && !run.gateLoop.ok ? `quality gates failed: ${failing.join(', ')}` : undefined,
    branch: ws.branch,
    commit: run.pushedCommit,
    changedFiles: run.committed?.files ?? [],
    gates: gatesOf(run),
    pullRequest,
    review: run.review,
  };
};

/** The task as it will be recorded, for the pull request's description. */
function recordedTask(run: AttemptRun): Task {
  const { task, provider } = run.ctx;
  const usage = { ...run.usage };
  addUsage(usage, run.reviewUsage);
  return {
    ...task,
    provider: provider.name,
    summary: run.summary,
    commit: run.pushedCommit,
    branch: run.ws.branch,
    usage: {
      ...task.usage,
      inputTokens: task.usage.inputTokens + usage.inputTokens,
      outputTokens: task.usage.outputTokens + usage.outputTokens,
      costUsd: Math.round((task.usage.costUsd + usage.costUsd) * 1e6) / 1e6,
    },
    attempts: task.attempts.map((a, i) =>
      i === task.attempts.length - 1 && a.outcome === 'running'
        ? { ...a, outcome: 'succeeded' as const, usage }
        : a,
    ),
  };
}

function gatesOf(run: AttemptRun): GateOutcome[] | undefined {
  return run.gateLoop ? gateOutcomes(run.gateLoop.results) : undefined;
}

function gateOutcomes(results: readonly GateResult[]): GateOutcome[] {
  return results.map((g) => ({
    name: g.name,
    ok: g.ok,
    exitCode: g.exitCode,
    timedOut: g.timedOut,
    durationMs: g.durationMs,
    output: g.ok ? undefined : tail(g.output, GATE_OUTPUT_ON_TASK),
  }));
}

export function addUsage(total: Usage, more: Partial<Usage> | undefined): void {
  if (!more) return;
  total.inputTokens += more.inputTokens ?? 0;
  total.outputTokens += more.outputTokens ?? 0;
  if (more.cachedInputTokens !== undefined)
    total.cachedInputTokens = (total.cachedInputTokens ?? 0) + more.cachedInputTokens;
  total.costUsd = Math.round((total.costUsd + (more.costUsd ?? 0)) * 1e6) / 1e6;
}

function firstLine(text: string, max: number): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
