import type { ProviderErrorClass } from '../core/errors.js';
import type { ProcessOutput, ProviderDriver } from '../core/ports.js';
import type { AgentRole } from '../core/roles.js';
import type { Task, Usage } from '../core/schemas.js';
import { resolveBinary, runAgentProcess } from './agent-process.js';
import { git } from './git.js';
import { type GitWorkspaces, PushConflictError, type Workspace } from './workspace.js';

/** A provider as configured: which driver, which binary, which model, which environment. */
export interface ProviderConfig {
  name: string;
  driver: ProviderDriver;
  bin: string;
  model?: string;
  /** Extra variables for this provider's CLI (credentials, base URLs). */
  env: Record<string, string>;
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
}

const emptyUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, costUsd: 0 });

/**
 * One attempt of a task: a worktree from the cached mirror, the provider CLI run headless in it
 * under limits, and the result committed and pushed on the task's branch.
 */
export async function runAttempt(ctx: AttemptContext): Promise<AttemptReport> {
  const { task, provider, log } = ctx;
  const started = Date.now();
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
    };
    const cmd = provider.driver.command(input);
    let startLatencyMs: number | undefined;
    log(
      `starting ${provider.name} (${bin}) with a ${timeoutSeconds} s time limit, ${cpu} CPU, ${memoryMiB} MiB`,
    );
    const output: ProcessOutput = await runAgentProcess({
      bin,
      args: cmd.args,
      cwd: ws.dir,
      env: { ...ctx.baseEnv, HOME: ws.homeDir, ...provider.env, ...cmd.env },
      stdin: cmd.stdin,
      limits: {
        timeoutMs: timeoutSeconds * 1000,
        cpuSeconds: cpu * timeoutSeconds,
        memoryBytes: memoryMiB * 1024 * 1024,
      },
      signal: ctx.signal,
      onStart: (pid) => {
        startLatencyMs = Date.now() - started;
        log(`agent process ${pid} started`);
        ctx.onAgentStart?.(pid);
      },
      onLine: (stream, line) =>
        log(`[${provider.name} ${stream}] ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}`),
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
    const summary = parsed.text?.trim();
    const subject = `AutoDev: ${firstLine(task.prompt, 64)}`;
    const result = await ctx.workspaces.commit(
      ws,
      subject,
      `${summary ?? ''}\n\nRole: ${task.role}\nProvider: ${provider.name}`,
    );
    if (!result.changed) {
      log('the agent changed nothing: no commit, no push');
      return {
        ...base,
        ok: true,
        summary: summary ? `No changes. ${summary}` : 'No changes: the agent left the repository as it was.',
      };
    }
    log(`committed ${result.files.length} file(s) as ${result.commit?.slice(0, 12)}; pushing ${ws.branch}`);
    if (ctx.signal.aborted || (ctx.confirmOwnership && !(await ctx.confirmOwnership()))) {
      return { ...base, ok: false, errorClass: 'crash', message: 'the attempt was stopped before its push' };
    }
    const pushed = await ctx.workspaces.push(ws);
    if (pushed.replaced) log(`replaced this task's earlier push (${pushed.replaced.slice(0, 12)})`);
    if (pushed.rebasedOnto) log(`the branch had moved; rebased onto ${pushed.rebasedOnto.slice(0, 12)}`);
    const commit = pushed.rebasedOnto
      ? (await git(['rev-parse', 'HEAD'], { cwd: ws.dir })).trim()
      : result.commit;
    log(`pushed ${ws.branch}`);
    return {
      ...base,
      ok: true,
      summary,
      branch: ws.branch,
      commit,
      changedFiles: result.files,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`attempt failed: ${message}`);
    if (err instanceof PushConflictError) {
      return {
        ok: false,
        errorClass: 'crash',
        fatalCode: 'push_conflict',
        message,
        usage: emptyUsage(),
        changedFiles: [],
      };
    }
    return { ok: false, errorClass: 'crash', message, usage: emptyUsage(), changedFiles: [] };
  } finally {
    // clean-up is off the critical path: the result is recorded while the worktree goes away
    if (ws && !ctx.keepWorkspace) await ctx.workspaces.remove(ws).catch(() => undefined);
  }
}

function firstLine(text: string, max: number): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
