import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { ProviderErrorClass } from '../../../lib/core/errors.js';
import type { DriverInput, ParsedOutput, ProcessOutput, ProviderDriver } from '../../../lib/core/ports.js';
import { runAgentProcess } from '../../../lib/worker/agent-process.js';
import { FAKES, isAlive } from '../../support/local-platform.js';

/** The fake provider CLIs (CommonJS node scripts that print what the real CLIs print). */
export const FAKES_BIN = FAKES;

/** A driver whose parse may take the run's input (to price tokens by model). */
export type TestDriver = Omit<ProviderDriver, 'parse'> & {
  parse(output: ProcessOutput, input?: Pick<DriverInput, 'model'>): ParsedOutput;
};

export interface FakeRun {
  output: ProcessOutput;
  parsed: ParsedOutput;
  errorClass: ProviderErrorClass | undefined;
  workdir: string;
  homeDir: string;
  /** A directory outside the workspace for pidfiles and markers. */
  scratch: string;
  /** `git status --porcelain` of the workspace after the run. */
  changes: string[];
}

export interface FakeRunOptions {
  timeoutMs?: number;
  /** Variables on top of PATH and HOME (credentials, base URLs). */
  env?: Record<string, string>;
  /** SIGKILL the CLI's process this long after it starts, as the OOM killer would. */
  killAfterMs?: number;
}

/** A git repository with one commit, a private home and a scratch directory. */
export function makeWorkspace(): { workdir: string; homeDir: string; scratch: string } {
  const root = mkdtempSync(join(tmpdir(), 'autodev-driver-'));
  const workdir = join(root, 'repo');
  const homeDir = join(root, 'home');
  const scratch = join(root, 'scratch');
  for (const d of [workdir, homeDir, scratch]) mkdirSync(d);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: workdir, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  writeFileSync(join(workdir, 'README.md'), '# sample\n');
  git('add', 'README.md');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'init');
  return { workdir, homeDir, scratch };
}

/**
 * Runs the fake CLI for `driver` as a real process, the way the worker does: the driver's command
 * line, in its own process group, with a private HOME; then parses and classifies what it printed.
 * `prompt` may use `{scratch}`, replaced by the scratch directory.
 */
export async function runFake(
  driver: TestDriver,
  input: Omit<DriverInput, 'workdir' | 'homeDir'>,
  opts: FakeRunOptions = {},
): Promise<FakeRun> {
  const { workdir, homeDir, scratch } = makeWorkspace();
  const full: DriverInput = {
    ...input,
    prompt: input.prompt.replaceAll('{scratch}', scratch),
    workdir,
    homeDir,
  };
  const cmd = driver.command(full);
  let killTimer: NodeJS.Timeout | undefined;
  const output = await runAgentProcess({
    bin: join(FAKES_BIN, driver.bin),
    args: cmd.args,
    cwd: workdir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: homeDir, ...opts.env, ...cmd.env },
    stdin: cmd.stdin,
    limits: { timeoutMs: opts.timeoutMs ?? 15_000, killGraceMs: 300 },
    onStart: (pid) => {
      if (opts.killAfterMs !== undefined)
        killTimer = setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }, opts.killAfterMs);
    },
  });
  clearTimeout(killTimer);
  const parsed = driver.parse(output, full);
  const errorClass = driver.classify(output, parsed);
  const changes = execFileSync('git', ['status', '--porcelain'], { cwd: workdir, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  return { output, parsed, errorClass, workdir, homeDir, scratch, changes };
}

export { isAlive };

/** The pids the fake wrote to its pidfile: its own, then its grandchild's when it hangs. */
export function pidsFrom(file: string): number[] {
  return readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
}

/** Waits until `check` holds or `ms` pass; returns the last result. */
export async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** The usage numbers a case expects; cost is compared to 9 decimal places. */
export interface ExpectedUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  costUsd: number;
}

/** One scenario for a driver against its fake CLI. */
export interface FakeCase {
  name: string;
  prompt: string;
  errorClass: ProviderErrorClass | undefined;
  usage: ExpectedUsage;
  /** Whether the workspace has changes afterwards. */
  changed: boolean;
  options?: FakeRunOptions;
  /** The fake hangs: check that its whole process tree is gone after the timeout. */
  hang?: boolean;
}

/** The hang scenario: a 1.5 s limit, and the fake's grandchild must be gone afterwards. */
export const HANG_TIMEOUT_MS = 1500;

/** The standard hang prompt: the fake writes "pid grandchild-pid" to {scratch}/pids and never ends. */
export const HANG_PROMPT = 'Wait forever [fake:hang] [fake:pidfile={scratch}/pids]';

/**
 * Runs every case against the driver's fake CLI, concurrently, each in its own git workspace, and
 * checks the error class, the parsed usage and whether the workspace changed.
 */
export function fakeSuite(
  title: string,
  driver: TestDriver,
  cases: FakeCase[],
  base: Omit<DriverInput, 'workdir' | 'homeDir' | 'prompt'> = {},
  env: Record<string, string> = {},
): void {
  describe(title, () => {
    it.concurrent.each(cases)('$name', async (c) => {
      // Act
      const run = await runFake(
        driver,
        { ...base, prompt: c.prompt },
        { timeoutMs: c.hang ? HANG_TIMEOUT_MS : undefined, ...c.options, env: { ...env, ...c.options?.env } },
      );
      // Assert
      expect({
        errorClass: run.errorClass,
        stdout: run.output.stdout,
        stderr: run.output.stderr,
      }).toMatchObject({
        errorClass: c.errorClass,
      });
      // missing numbers count as zero, as the worker counts them
      const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0, ...run.parsed.usage };
      expect(usage.inputTokens).toBe(c.usage.inputTokens);
      expect(usage.outputTokens).toBe(c.usage.outputTokens);
      if (c.usage.cachedInputTokens !== undefined)
        expect(usage.cachedInputTokens).toBe(c.usage.cachedInputTokens);
      expect(usage.costUsd).toBeCloseTo(c.usage.costUsd, 9);
      expect({ changed: run.changes.length > 0, changes: run.changes }).toMatchObject({ changed: c.changed });
      if (c.errorClass !== undefined)
        expect(run.parsed.reportedError || run.output.exitCode !== 0).toBe(true);
      if (c.hang) {
        expect(run.output.timedOut).toBe(true);
        const pids = pidsFrom(join(run.scratch, 'pids'));
        expect(pids).toHaveLength(2);
        for (const pid of pids) expect(await eventually(() => !isAlive(pid))).toBe(true);
      }
    });
  });
}
