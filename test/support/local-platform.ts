import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../lib/infra/paths.js';

/** The repository root, whether this runs from test/ or from its compiled copy in dist/test/. */
export const ROOT = repoRoot(import.meta.dirname);
export const CLI = join(ROOT, 'dist/bin/autodev.js');
export const FAKES = join(ROOT, 'test/fakes/bin');

export function tempDir(prefix = 'autodev-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};

export function gitIn(cwd: string, args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    env: { ...process.env, ...GIT_ENV },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A bare repository on disk with one commit on `main`: a real git remote. */
export function makeRemote(dir: string, files: Record<string, string> = { 'README.md': '# demo\n' }): string {
  const remote = join(dir, 'remote.git');
  gitIn(dir, ['init', '--quiet', '--bare', '--initial-branch=main', remote]);
  const seed = join(dir, 'seed');
  gitIn(dir, ['clone', '--quiet', remote, seed]);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(seed, name, '..'), { recursive: true });
    writeFileSync(join(seed, name), content);
  }
  gitIn(seed, ['add', '.']);
  gitIn(seed, ['commit', '--quiet', '-m', 'initial commit']);
  gitIn(seed, ['push', '--quiet', 'origin', 'main']);
  return remote;
}

export interface RunningServer {
  url: string;
  proc: ChildProcess;
  output: () => string;
  env: NodeJS.ProcessEnv;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Environment for the server and CLI: fakes first on PATH, a fresh AUTODEV_HOME. */
export function platformEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${FAKES}:${process.env.PATH}`,
    AUTODEV_HOME: home,
    AUTODEV_PORT: '0',
    AUTODEV_LOG_LEVEL: 'WARN',
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    AUTODEV_RETRY_BASE_MS: '50',
    AUTODEV_RETRY_MAX_MS: '200',
    // the tests' repositories: bare repositories under the temporary directory, git servers on the loopback
    AUTODEV_LOCAL_REPO_ROOTS: `*=${tmpdir()}`,
    AUTODEV_ALLOWED_REPO_HOSTS: '127.0.0.1,localhost',
    ...extra,
  };
}

/** Starts `autodev serve` as a real process and waits until it listens. */
export async function startServer(env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const proc = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (c) => {
    out += c;
  });
  proc.stderr?.on('data', (c) => {
    out += c;
  });
  const exited = new Promise<number | null>((r) =>
    proc.on('exit', (code, sig) => r(code ?? (sig ? 128 : null))),
  );
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 15_000);
    const check = () => {
      const m = out.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1] as string);
      }
    };
    proc.stdout?.on('data', check);
    void exited.then(() => reject(new Error(`server exited:\n${out}`)));
  });
  return {
    url,
    proc,
    env: { ...env, AUTODEV_URL: url },
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `autodev` CLI. */
export function cli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolveRun) => {
    const proc = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c) => {
      stdout += c;
    });
    proc.stderr.on('data', (c) => {
      stderr += c;
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

export async function until<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Live processes (zombies excluded) whose command line holds `token`, seen from this (the host's) /proc. */
export function processesWith(token: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(token) && isAlive(Number(name)))
        pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Whether a process is alive (a zombie waiting to be reaped counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
