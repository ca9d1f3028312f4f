import { join } from 'node:path';
import { type ProviderErrorClass, ValidationError } from '../core/errors.js';
import type { ModelCall } from '../core/metering.js';
import type { DriverInput, ProcessOutput, ProviderDriver } from '../core/ports.js';
import type { AgentRole } from '../core/roles.js';
import type { GateOutcome, Task, TaskReview, Usage } from '../core/schemas.js';
import { type AgentProcessOptions, resolveBinary, runAgentProcess } from './agent-process.js';
import type { ModelPrice } from './drivers/pricing.js';
import { publishPullRequest } from './forge/publish.js';
import type { ForgeEntry } from './forge/resolve.js';
import {
  AUTODEV_FILE,
  type AutodevConfig,
  type GateLoopResult,
  type GateResult,
  readAutodevConfig,
  runGatesWithRepairs,
  tail,
} from './gates.js';
import { GitError, git } from './git.js';
import { KnownSecrets } from './known-secrets.js';
import { type ReviewVerdict, revisionPrompt, runReview } from './review.js';
import type { Sandbox } from './sandbox.js';
import { describeFindings, scanBeforePush } from './secret-scan.js';
import {
  type GitWorkspaces,
  PushConflictError,
  type Workspace,
  WorkspaceError,
  workspaceFault,
} from './workspace.js';

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
  /** Secrets by name, for the forges' tokens. */
  secrets?: Readonly<Record<string, string | undefined>>;
  /** Where the task's logs are read, for the pull request's description. */
  logsUrl?: string;
  /** For tests and proxies: the forges' HTTP client. */
  forgeFetch?: typeof fetch;
  /** Every configured provider by name, for the review agent that `.autodev.yml` names. */
  providers?: Readonly<Record<string, ProviderConfig>>;
  /** The attempt's model gateway session: the task's agent is pointed at it instead of its provider. */
  gateway?: DriverInput['gateway'];
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

/** What quality gates see of the environment: basics, never credentials. */
const GATE_ENV =
  /^(PATH|LANG|LC_[A-Z]+|TZ|TMPDIR|TERM|CI|SSL_CERT_FILE|NODE_EXTRA_CA_CERTS|HTTPS?_PROXY|NO_PROXY)$/;

/** Characters of a failing gate's output kept on the task. */
const GATE_OUTPUT_ON_TASK = 2000;

/** A repair round's agent run failed: the attempt ends with its error class. */
class RepairFailed extends Error {
  constructor(
    readonly errorClass: ProviderErrorClass,
    message: string,
  ) {
    super(message);
  }
}

const emptyUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, costUsd: 0 });

/**
 * One attempt of a task: a worktree from the cached mirror, the provider CLI run headless in it
 * under limits, and the result committed and pushed on the task's branch.
 */
export async function runAttempt(ctx: AttemptContext): Promise<AttemptReport> {
  const known = ctx.knownSecrets ?? new KnownSecrets({});
  const report = await attemptOnce({
    ...ctx,
    knownSecrets: known,
    log: (line) => ctx.log(known.redact(line)),
  });
  return redactReport(report, known);
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

async function attemptOnce(ctx: AttemptContext & { knownSecrets: KnownSecrets }): Promise<AttemptReport> {
  const { task, provider, log } = ctx;
  const started = Date.now();
  if (ctx.sandbox?.mode === 'unavailable') {
    const message = `Agents cannot run on this server: ${ctx.sandbox.reason}. Install bubblewrap (apt-get install bubblewrap), or set AUTODEV_SANDBOX=off to run agents unconfined.`;
    log(`attempt failed: ${message}`);
    // the server's fault, not the provider's: no error class, nothing counted against a breaker
    return { ok: false, fatalCode: 'sandbox_unavailable', message, usage: emptyUsage(), changedFiles: [] };
  }
  const bin = resolveBinary(provider.bin, ctx.baseEnv.PATH);
  if (!bin) {
    return {
      ok: false,
      errorClass: 'not_installed',
      message: `"${provider.bin}" was not found on PATH. Install the ${provider.name} CLI or set AUTODEV_${provider.name.toUpperCase().replace(/-/g, '_')}_BIN.`,
      usage: emptyUsage(),
      changedFiles: [],
    };
  }
  let ws: Workspace | undefined;
  try {
    ws = await ctx.workspaces.prepare(task.id, task.repo, task.baseBranch);
    log(`workspace ready: branch ${ws.branch} from ${ws.baseBranch} at ${ws.baseCommit.slice(0, 12)}`);
    const timeoutSeconds = task.limits.timeoutSeconds ?? ctx.role.timeoutSeconds ?? ctx.defaultTimeoutSeconds;
    const cpu = task.limits.cpu ?? ctx.role.resources.cpu;
    const memoryMiB = task.limits.memoryMiB ?? ctx.role.resources.memoryMiB;
    const input = {
      prompt: task.prompt,
      workdir: ws.dir,
      homeDir: ws.homeDir,
      model: provider.model,
      maxTurns: ctx.role.maxTurns,
      maxBudgetUsd: task.limits.maxCostUsd,
      systemPrompt: ctx.role.preamble,
      gateway: ctx.gateway,
    };
    const cmd = provider.driver.command(input);
    const sandbox: AgentProcessOptions['sandbox'] =
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
              gatewayPort: ctx.gateway ? Number(new URL(ctx.gateway.baseUrl).port) : undefined,
            },
          }
        : undefined;
    let startLatencyMs: number | undefined;
    log(
      `starting ${provider.name} (${bin}) with a ${timeoutSeconds} s time limit, ${cpu} CPU, ${memoryMiB} MiB`,
    );
    const agentRun = {
      bin,
      cwd: ws.dir,
      limits: {
        timeoutMs: timeoutSeconds * 1000,
        cpuSeconds: cpu * timeoutSeconds,
        memoryBytes: memoryMiB * 1024 * 1024,
      },
      signal: ctx.signal,
      sandbox,
      onLine: (stream: 'stdout' | 'stderr', line: string) =>
        log(`[${provider.name} ${stream}] ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}`),
    };
    const output: ProcessOutput = await runAgentProcess({
      ...agentRun,
      args: cmd.args,
      env: { ...ctx.baseEnv, HOME: ws.homeDir, ...provider.env, ...cmd.env },
      stdin: cmd.stdin,
      onStart: (pid) => {
        startLatencyMs = Date.now() - started;
        log(`agent process ${pid} started`);
        ctx.onAgentStart?.(pid);
      },
    });
    const parsed = provider.driver.parse(output, input);
    const usage: Usage = { ...emptyUsage(), ...stripUndefined(parsed.usage ?? {}) };
    const base = { usage, sessionId: parsed.sessionId, startLatencyMs, changedFiles: [] as string[] };
    if (ctx.signal.aborted) {
      return { ...base, ok: false, errorClass: 'crash', message: 'the attempt was stopped' };
    }
    const errorClass = provider.driver.classify(output, parsed);
    if (errorClass) {
      const how = output.timedOut
        ? `ran past its ${timeoutSeconds} s limit and was killed`
        : output.signal
          ? `was killed by ${output.signal}`
          : `exited with code ${output.exitCode}`;
      const message = `${provider.name} ${how}${parsed.errorMessage ? `: ${parsed.errorMessage}` : ''}`;
      log(`agent failed (${errorClass}): ${message}`);
      return { ...base, ok: false, errorClass, message };
    }
    log(
      `agent finished in ${Date.now() - started} ms${usage.costUsd ? `, cost $${usage.costUsd.toFixed(4)}` : ''}`,
    );
    const summary = parsed.text === undefined ? undefined : ctx.knownSecrets.redact(parsed.text.trim());

    /** The task's own agent again in the same worktree (a repair round, a review round); throws RepairFailed. */
    const rerun = async (prompt: string, what: string, given: string) => {
      const repairInput: DriverInput = { ...input, prompt };
      const repairCmd = provider.driver.command(repairInput);
      log(`${what}: starting ${provider.name} with ${given}`);
      const out = await runAgentProcess({
        ...agentRun,
        args: repairCmd.args,
        env: { ...ctx.baseEnv, HOME: input.homeDir, ...provider.env, ...repairCmd.env },
        stdin: repairCmd.stdin,
        onStart: (pid) => log(`agent process ${pid} started (${what})`),
      });
      const p = provider.driver.parse(out, repairInput);
      addUsage(usage, p.usage);
      if (ctx.signal.aborted) throw new RepairFailed('crash', 'the attempt was stopped');
      const cls = provider.driver.classify(out, p);
      if (cls) {
        const how = out.timedOut
          ? `ran past its ${timeoutSeconds} s limit and was killed`
          : out.signal
            ? `was killed by ${out.signal}`
            : `exited with code ${out.exitCode}`;
        throw new RepairFailed(
          cls,
          `${provider.name} ${how} in ${what}${p.errorMessage ? `: ${p.errorMessage}` : ''}`,
        );
      }
      log(`${what}: agent finished${p.text ? `: ${firstLine(p.text, 200)}` : ''}`);
    };

    // quality gates (.autodev.yml) with repair rounds, on what the agent changed
    let config: AutodevConfig | undefined;
    let gateLoop: GateLoopResult | undefined;
    const gateEnv: Record<string, string> = { HOME: ws.homeDir };
    for (const [k, v] of Object.entries(ctx.baseEnv)) if (GATE_ENV.test(k)) gateEnv[k] = v;
    const workdir = ws.dir;
    const runGates = (cfg: AutodevConfig) =>
      runGatesWithRepairs({
        workdir,
        config: cfg,
        taskPrompt: task.prompt,
        env: gateEnv,
        signal: ctx.signal,
        sandbox,
        log,
        repair: (prompt, n) => rerun(prompt, `repair round ${n}`, 'the failing checks'),
      });
    const changed = await ctx.workspaces.changedFiles(ws);
    if (changed.length > 0) {
      try {
        config = readAutodevConfig(ws.dir);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        log(`attempt failed: ${err.message}`);
        return {
          ...base,
          ok: false,
          fatalCode: 'invalid_autodev_config',
          message: `${err.message}. Fix ${AUTODEV_FILE} in the repository; the task was not retried.`,
        };
      }
      if (config.gates.length > 0) {
        log(`running ${config.gates.length} quality gate(s) from ${AUTODEV_FILE}`);
        try {
          gateLoop = await runGates(config);
        } catch (err) {
          if (!(err instanceof RepairFailed)) throw err;
          log(`agent failed (${err.errorClass}): ${err.message}`);
          return { ...base, ok: false, errorClass: err.errorClass, message: err.message };
        }
        if (ctx.signal.aborted) {
          return { ...base, ok: false, errorClass: 'crash', message: 'the attempt was stopped' };
        }
        const failing = gateLoop.results.filter((g) => !g.ok).map((g) => g.name);
        if (failing.length > 0 && !config.draftOnFailure) {
          const message = `Quality gates failed after ${gateLoop.rounds} repair round(s): ${failing.join(', ')}. Nothing was pushed (draftOnFailure is false).`;
          log(message);
          return {
            ...base,
            ok: false,
            fatalCode: 'gates_failed',
            message,
            gates: gateOutcomes(gateLoop.results),
          };
        }
        log(
          failing.length > 0
            ? `quality gates still fail (${failing.join(', ')}): pushing for a draft pull request`
            : 'quality gates passed',
        );
      }
    }

    // review (.autodev.yml `review`): once the gates pass, another provider's agent reviews the change;
    // with `rounds: 1` a request for changes gives the task's agent the review once, then the gates
    // and the review run again. A reviewer's failure is recorded and logged, never fails the attempt.
    let review: TaskReview | undefined;
    let reviewVerdict: ReviewVerdict | undefined;
    let revised = false;
    if (config?.review && changed.length > 0) {
      const { provider: reviewerName, rounds } = config.review;
      const reviewer = ctx.providers?.[reviewerName];
      for (let round = 0; ; round++) {
        if (gateLoop && !gateLoop.ok) {
          log('no review: the quality gates fail');
          break;
        }
        const reviewed = await runReview({
          task,
          reviewer,
          reviewerName,
          bin: reviewer ? resolveBinary(reviewer.bin, ctx.baseEnv.PATH) : undefined,
          workdir: ws.dir,
          worktree: ws,
          homeDir: ws.homeDir,
          baseCommit: ws.baseCommit,
          baseEnv: ctx.baseEnv,
          limits: agentRun.limits,
          signal: ctx.signal,
          sandbox,
          log,
          maxTurns: ctx.role.maxTurns,
          maxBudgetUsd: task.limits.maxCostUsd,
        });
        addUsage(usage, reviewed.usage);
        review = reviewed.review;
        reviewVerdict = reviewed.verdict;
        if (ctx.signal.aborted) {
          return { ...base, ok: false, errorClass: 'crash', message: 'the attempt was stopped' };
        }
        if (reviewed.verdict?.verdict !== 'request_changes' || round >= rounds) break;
        try {
          await rerun(
            revisionPrompt(task.prompt, reviewed.verdict),
            `review round ${round + 1}`,
            'the review comments',
          );
          revised = true;
          if (config.gates.length > 0) {
            log(`running ${config.gates.length} quality gate(s) from ${AUTODEV_FILE} again`);
            gateLoop = await runGates(config);
          }
        } catch (err) {
          if (!(err instanceof RepairFailed)) throw err;
          log(`agent failed (${err.errorClass}): ${err.message}`);
          return { ...base, ok: false, errorClass: err.errorClass, message: err.message, review };
        }
        if (ctx.signal.aborted) {
          return { ...base, ok: false, errorClass: 'crash', message: 'the attempt was stopped' };
        }
        const failing = gateLoop?.results.filter((g) => !g.ok).map((g) => g.name) ?? [];
        if (gateLoop && failing.length > 0 && !config.draftOnFailure) {
          const message = `Quality gates failed after the review round and ${gateLoop.rounds} repair round(s): ${failing.join(', ')}. Nothing was pushed (draftOnFailure is false).`;
          log(message);
          return {
            ...base,
            ok: false,
            fatalCode: 'gates_failed',
            message,
            gates: gateOutcomes(gateLoop.results),
            review,
          };
        }
        if (gateLoop)
          log(
            failing.length > 0
              ? `quality gates still fail (${failing.join(', ')}): pushing for a draft pull request`
              : 'quality gates passed',
          );
      }
    }
    const gates = gateLoop ? gateOutcomes(gateLoop.results) : undefined;
    const gatesNote =
      gateLoop && !gateLoop.ok
        ? `quality gates failed: ${gateLoop.results
            .filter((g) => !g.ok)
            .map((g) => g.name)
            .join(', ')}`
        : undefined;

    const subject = `AutoDev: ${firstLine(task.prompt, 64)}`;
    const result = await ctx.workspaces.commit(
      ws,
      subject,
      `${summary ?? ''}\n\nRole: ${task.role}\nProvider: ${provider.name}`,
      // gates and repair rounds may have changed more files; without them the list is still right
      gateLoop || revised ? undefined : changed,
    );
    if (!result.changed) {
      log('the agent changed nothing: no commit, no push');
      return {
        ...base,
        ok: true,
        gates,
        summary: summary ? `No changes. ${summary}` : 'No changes: the agent left the repository as it was.',
      };
    }
    log(`committed ${result.files.length} file(s) as ${result.commit?.slice(0, 12)}`);
    const findings = await scanBeforePush(ws, ws.baseCommit, { known: ctx.knownSecrets });
    if (findings.length > 0) {
      const message = describeFindings(findings);
      log(`secret scan: ${message}`);
      return { ...base, ok: false, fatalCode: 'secret_detected', message, gates };
    }
    log(`secret scan: nothing found; pushing ${ws.branch}`);
    if (ctx.signal.aborted || (ctx.confirmOwnership && !(await ctx.confirmOwnership()))) {
      return { ...base, ok: false, errorClass: 'crash', message: 'the attempt was stopped before its push' };
    }
    const pushed = await ctx.workspaces.push(ws);
    if (pushed.replaced) log(`replaced this task's earlier push (${pushed.replaced.slice(0, 12)})`);
    if (pushed.rebasedOnto) log(`the branch had moved; rebased onto ${pushed.rebasedOnto.slice(0, 12)}`);
    const commit = pushed.rebasedOnto
      ? (await git(['rev-parse', 'HEAD'], { worktree: ws })).trim()
      : result.commit;
    log(`pushed ${ws.branch}`);
    let pullRequest: { url: string } | undefined;
    if (ctx.forges) {
      // the task as it will be recorded, for the pull request's description
      const recorded: Task = {
        ...task,
        provider: provider.name,
        summary,
        commit,
        branch: ws.branch,
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
      const published = await publishPullRequest({
        task: recorded,
        branch: ws.branch,
        base: ws.baseBranch,
        gates: gateLoop?.results ?? [],
        draftOnFailure: config?.draftOnFailure ?? true,
        review: reviewVerdict,
        forges: ctx.forges,
        secrets: ctx.secrets ?? {},
        logsUrl: ctx.logsUrl,
        fetch: ctx.forgeFetch,
        log,
        redact: (text) => ctx.knownSecrets.redact(text),
      });
      if (published.outcome === 'opened' || published.outcome === 'updated') {
        pullRequest = { url: published.pullRequest.url };
      }
    }
    return {
      ...base,
      ok: true,
      summary,
      message: gatesNote,
      branch: ws.branch,
      commit,
      changedFiles: result.files,
      gates,
      pullRequest,
      review,
    };
  } catch (caught) {
    // the repository's or the machine's fault, not the provider's: class `workspace`
    const err =
      caught instanceof GitError || isDiskFault(caught)
        ? workspaceFault(task.repo, 'update', caught)
        : caught;
    const message = err instanceof Error ? err.message : String(err);
    log(`attempt failed: ${message}`);
    if (err instanceof WorkspaceError) {
      return { ok: false, errorClass: 'workspace', message, usage: emptyUsage(), changedFiles: [] };
    }
    if (err instanceof PushConflictError) {
      return {
        ok: false,
        errorClass: 'workspace',
        fatalCode: 'push_conflict',
        message,
        usage: emptyUsage(),
        changedFiles: [],
      };
    }
    return { ok: false, errorClass: 'crash', message, usage: emptyUsage(), changedFiles: [] };
  } finally {
    // clean-up is off the critical path: the result is recorded while the worktree goes away
    // off the critical path: the result is recorded while the worktree goes (the next attempt on
    // this mirror waits for it through the mirror lock; a sweep at start removes what a crash left)
    if (ws && !ctx.keepWorkspace) void ctx.workspaces.remove(ws).catch(() => undefined);
  }
}

function isDiskFault(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
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

function addUsage(total: Usage, more: Partial<Usage> | undefined): void {
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
