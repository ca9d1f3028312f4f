import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  FAKES,
  gitIn,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

export { cli, gitIn, until };

/** A provider whose behaviour a test switches while the platform runs (see test/fakes/flaky-claude). */
export class FlakyClaude {
  readonly dir: string;
  readonly bin: string;
  constructor(parent: string) {
    this.dir = join(parent, 'flaky');
    mkdirSync(this.dir, { recursive: true });
    this.bin = join(this.dir, 'claude');
    copyFileSync(join(FAKES, '..', 'flaky-claude'), this.bin);
    writeFileSync(join(this.dir, 'target'), join(FAKES, 'claude'));
    this.set('ok');
  }
  set(mode: 'ok' | 'rate_limit' | 'overloaded' | 'bad_key' | 'hang' | 'crash' | 'crash_once'): void {
    writeFileSync(join(this.dir, 'mode'), `${mode}\n`);
  }
}

export interface Platform {
  dir: string;
  home: string;
  remote: string;
  env: NodeJS.ProcessEnv;
  server: RunningServer;
  servers: RunningServer[];
  /** Starts another server on the same AUTODEV_HOME. */
  another(extra?: Record<string, string>): Promise<RunningServer>;
  submit(prompt: string, extra?: string[]): Promise<string>;
  status(id: string, env?: NodeJS.ProcessEnv): Promise<Task>;
  waitEnd(id: string, timeoutMs?: number): Promise<Task>;
  list(): Promise<Task[]>;
  /** Commits on the task's branch that are not on main. */
  branchCommits(id: string): string[];
  branches(): string[];
  stop(): Promise<void>;
}

export async function platform(extra: Record<string, string> = {}, rolesYaml?: string): Promise<Platform> {
  const dir = tempDir('autodev-fault-');
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true });
  if (rolesYaml) writeFileSync(join(home, 'roles.yaml'), rolesYaml);
  const remote = makeRemote(dir);
  const base = platformEnv(home, {
    // these tests follow agents by the host pids they write outside their worktrees, and let them
    // outlive a killed server: both only unconfined (the sandbox has its own tests in test/security)
    AUTODEV_SANDBOX: 'off',
    CODEX_API_KEY: 'sk-test-codex',
    AUTODEV_BREAKER_FAILURES: '1000',
    AUTODEV_PROVIDER_RATE: '1000',
    ...extra,
  });
  const server = await startServer(base);
  const token = (
    await cli(['token', '--tenant', 'acme', '--role', 'operator', '--ttl', '2h'], server.env)
  ).stdout.trim();
  const servers = [server];
  const p: Platform = {
    dir,
    home,
    remote,
    server,
    servers,
    env: { ...server.env, AUTODEV_TOKEN: token },
    async another(more = {}) {
      const s = await startServer({ ...base, ...more });
      servers.push(s);
      return s;
    },
    async submit(prompt, more = []) {
      const r = await cli(['submit', '--repo', remote, '--prompt', prompt, ...more], p.env);
      if (r.code !== 0) throw new Error(`submit failed: ${r.stderr}`);
      return r.stdout.trim();
    },
    async status(id, env = p.env) {
      return JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task;
    },
    async waitEnd(id, timeoutMs = 30_000) {
      return until(
        async () => {
          const t = await p.status(id);
          return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
        },
        timeoutMs,
        `task ${id} to end`,
      );
    },
    async list() {
      return (
        JSON.parse((await cli(['list', '--json', '--limit', '500'], p.env)).stdout) as { items: Task[] }
      ).items;
    },
    branchCommits(id) {
      const out = gitIn(remote, ['rev-list', `refs/heads/autodev/${id}`, '^refs/heads/main']).trim();
      return out ? out.split('\n') : [];
    },
    branches() {
      return gitIn(remote, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/autodev/'])
        .trim()
        .split('\n')
        .filter(Boolean);
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    },
  };
  return p;
}

/** Every task ended, none twice: terminal states, one branch per succeeded change, one commit per branch. */
export function expectNothingLostOrDuplicated(p: Platform, tasks: Task[], expected: number): void {
  if (tasks.length !== expected) throw new Error(`expected ${expected} tasks, found ${tasks.length}`);
  for (const t of tasks) {
    if (!['succeeded', 'failed', 'cancelled'].includes(t.status))
      throw new Error(`task ${t.id} is stuck in ${t.status}`);
    if (t.status === 'succeeded' && t.commit) {
      const commits = p.branchCommits(t.id);
      if (commits.length !== 1 || commits[0] !== t.commit) {
        throw new Error(
          `task ${t.id}: branch has ${commits.length} commits (${commits.join(', ')}), task says ${t.commit}`,
        );
      }
    }
  }
}
