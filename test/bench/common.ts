/** What the local benches share: git remotes, the instant fake agent, the server as a child process. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const CLI = join(ROOT, 'dist/bin/autodev.js');

export const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'b@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'b@example.com',
};

export const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    env: GIT_ENV,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });

/** A bare remote in `work` with one commit of 50 small files on `main`. */
export function makeRemote(work: string, name: string): string {
  const remote = join(work, `${name}.git`);
  git(work, 'init', '--quiet', '--bare', '--initial-branch=main', remote);
  const seed = join(work, `${name}-seed`);
  git(work, 'clone', '--quiet', remote, seed);
  for (let i = 0; i < 50; i++) writeFileSync(join(seed, `file${i}.txt`), `content ${i}\n`.repeat(20));
  git(seed, 'add', '.');
  git(seed, 'commit', '--quiet', '-m', 'seed');
  git(seed, 'push', '--quiet', 'origin', 'main');
  return remote;
}

/**
 * An instant fake `claude` in `<work>/fake-bin`: records its start time in its worktree
 * (STARTED.txt: it may write nowhere else), edits one file, prints Claude Code's success result.
 */
export function makeInstantFake(work: string): { dir: string; bin: string } {
  const dir = join(work, 'fake-bin');
  mkdirSync(dir, { recursive: true });
  const result = JSON.stringify({
    type: 'result',
    subtype: 'success',
    is_error: false,
    duration_ms: 1,
    duration_api_ms: 1,
    num_turns: 1,
    result: 'Done.',
    session_id: '7c1a3f7e-2b7c-4a55-9d1b-1f0e3c2a9b11',
    total_cost_usd: 0.001,
    usage: { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 5 },
    permission_denials: [],
  });
  const bin = join(dir, 'claude');
  writeFileSync(
    bin,
    `#!/bin/sh\ndate +%s%3N > STARTED.txt\necho "change $$" >> CHANGES.txt\necho '${result}'\n`,
  );
  chmodSync(bin, 0o755);
  return { dir, bin };
}

/** Starts a node script and resolves when its output matches `ready` (the first group: its URL). */
export function startProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout?.on('data', (c) => {
      out += c;
      const m = out.match(ready);
      if (m) res({ proc, url: m[1] as string });
    });
    proc.on('exit', (code) => rej(new Error(`exited ${code}: ${out}`)));
  });
}

export const stop = (p: ChildProcess) =>
  new Promise<void>((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    p.once('exit', () => r());
    p.kill('SIGKILL');
  });

/** A token of the local platform (its key in AUTODEV_HOME of `env`). */
export function mintToken(env: NodeJS.ProcessEnv, tenant: string, role: string): string {
  return execFileSync(process.execPath, [CLI, 'token', '--tenant', tenant, '--role', role], {
    env,
    encoding: 'utf8',
  }).trim();
}

export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

/** A Markdown table, columns padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
