/**
 * `npm run bench`: measures the local platform in one run, each figure against a baseline
 * measured in the same run on the same machine.
 *   (a) POST /v1/tasks requests/s and p99: the platform vs a bare node:http server doing the same
 *       JSON parse and the same SQLite insert;
 *   (b) per-task overhead, submit → branch pushed, with an instant fake provider: the platform vs
 *       the raw git commands doing the same work (fetch, worktree add, agent, commit, push);
 *   (c) time from submit to the agent process starting.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type { Task } from '../../lib/core/schemas.js';
import {
  CLI,
  git,
  makeInstantFake,
  makeRemote,
  mintToken,
  pct,
  ROOT,
  startProcess,
  stop,
  table,
} from './common.js';

const BARE = join(ROOT, 'dist/test/bench/bare-server.js');
const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const TASKS = Number(process.env.BENCH_TASKS ?? 30);
const work = mkdtempSync(join(tmpdir(), 'autodev-bench-'));

async function load(url: string, token: string | undefined, remote: string) {
  const result = await autocannon({
    url: `${url}/v1/tasks`,
    method: 'POST',
    connections: 16,
    duration: DURATION,
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({
      repo: remote,
      prompt: 'Add rate limiting to the orders API',
      role: 'backend',
      labels: ['bench'],
    }),
  });
  if (result.non2xx > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers`);
  return { rps: result.requests.average, p99: result.latency.p99, p50: result.latency.p50 };
}

/** (a) POST /v1/tasks under load: the platform (API only, so no agent competes for the CPU), then the bare server. */
async function apiThroughput(baseEnv: NodeJS.ProcessEnv, remote: string) {
  const apiHome = join(work, 'home-api');
  const platform = await startProcess(
    [CLI, 'serve'],
    { ...baseEnv, AUTODEV_HOME: apiHome, AUTODEV_EXECUTOR: '0' },
    /listening on (http:\/\/\S+)/,
  );
  const token = mintToken({ ...baseEnv, AUTODEV_HOME: apiHome }, 'bench', 'submitter');
  await load(platform.url, token, remote); // warm-up
  const api = await load(platform.url, token, remote);
  await stop(platform.proc);
  const bare = await startProcess([BARE, join(work, 'bare.db')], baseEnv, /listening on (http:\/\/\S+)/);
  await load(bare.url, undefined, remote);
  const raw = await load(bare.url, undefined, remote);
  await stop(bare.proc);
  return [api, raw] as const;
}

async function main() {
  const remote = makeRemote(work, 'app');
  const fake = makeInstantFake(work);
  const baseEnv = {
    ...process.env,
    AUTODEV_LOG_LEVEL: 'ERROR',
    AUTODEV_PORT: '0',
    // the bench's repository is a bare repository in its work directory
    AUTODEV_LOCAL_REPO_ROOTS: `*=${work}`,
  };

  // (a) API throughput: platform (API only, so no agent competes for the CPU) vs bare server
  // (BENCH_SECONDS=0 leaves it out, to look at (b) and (c) alone)
  const skipped = { rps: Number.NaN, p99: Number.NaN, p50: Number.NaN };
  const [api, raw] = DURATION > 0 ? await apiThroughput(baseEnv, remote) : [skipped, skipped];

  // (b) + (c) per-task overhead and time to agent start
  const home = join(work, 'home-tasks');
  const env = {
    ...baseEnv,
    AUTODEV_HOME: home,
    PATH: `${fake.dir}:${process.env.PATH}`,
    AUTODEV_CONCURRENCY: '1',
    // the provider's token bucket (1 start/s by default) would pace the tasks: this measures overhead
    AUTODEV_PROVIDER_RATE: '10000',
    AUTODEV_PROVIDER_BURST: '10000',
    ANTHROPIC_API_KEY: 'sk-ant-bench',
  };
  const server = await startProcess([CLI, 'serve'], env, /listening on (http:\/\/\S+)/);
  const tok = mintToken(env, 'bench', 'submitter');
  const headers = { authorization: `Bearer ${tok}`, 'content-type': 'application/json' };
  const platformTimes: number[] = [];
  const startLatencies: number[] = [];
  const platformTask = async (i: number) => {
    const t0 = Date.now();
    const res = await fetch(`${server.url}/v1/tasks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ repo: remote, prompt: `Change ${i}` }),
    });
    const created = (await res.json()) as Task;
    let task = created;
    while (task.status !== 'succeeded' && task.status !== 'failed') {
      // the times are the server's own (createdAt, updatedAt): polling often only takes CPU from it
      await new Promise((r) => setTimeout(r, 10));
      task = (await (await fetch(`${server.url}/v1/tasks/${created.id}`, { headers })).json()) as Task;
    }
    if (task.status !== 'succeeded' || !task.commit)
      throw new Error(`task ${task.id} ${task.status}: ${JSON.stringify(task.error)}`);
    if (i < 2) return; // warm-up: first fetch creates the mirror
    platformTimes.push(Date.parse(task.updatedAt) - Date.parse(task.createdAt));
    startLatencies.push(
      Number(git(work, '--git-dir', remote, 'show', `${task.commit}:STARTED.txt`).trim()) - t0,
    );
  };

  // baseline: the same work with raw git commands and the same fake agent
  const mirror = join(work, 'raw-mirror.git');
  git(work, 'init', '--quiet', '--bare', mirror);
  git(mirror, 'remote', 'add', 'origin', remote);
  const rawTimes: number[] = [];
  const rawTask = (i: number) => {
    const t0 = performance.now();
    git(mirror, 'fetch', '--quiet', '--prune', 'origin');
    const wt = join(work, `raw-wt-${i}`);
    git(mirror, 'worktree', 'add', '--quiet', '-B', `raw/${i}`, wt, 'refs/remotes/origin/main');
    execFileSync(join(fake.dir, 'claude'), ['-p', `Change ${i}`], { cwd: wt, stdio: 'pipe' });
    git(wt, 'add', '--all');
    git(wt, 'commit', '--quiet', '-m', `Change ${i}`);
    git(wt, 'push', '--quiet', '--force', 'origin', `HEAD:refs/heads/raw/${i}`);
    // the branch is pushed: that is the result. Both sides remove the worktree after timing it
    // (the platform does it in the background, after recording the task).
    if (i >= 2) rawTimes.push(performance.now() - t0);
    git(mirror, 'worktree', 'remove', '--force', wt);
  };

  // one task of each side in turn: on a shared machine both see the same load
  for (let i = 0; i < TASKS + 2; i++) {
    await platformTask(i);
    rawTask(i);
  }
  await stop(server.proc);

  const rows = [
    [
      '(a) POST /v1/tasks req/s',
      raw.rps.toFixed(0),
      api.rps.toFixed(0),
      (api.rps / raw.rps).toFixed(2),
      '>= 0.5',
    ],
    [
      '(a) POST /v1/tasks p99 ms',
      String(raw.p99),
      String(api.p99),
      (api.p99 / Math.max(1, raw.p99)).toFixed(2),
      '',
    ],
    [
      '(b) per task, p50 ms',
      pct(rawTimes, 50).toFixed(0),
      pct(platformTimes, 50).toFixed(0),
      (pct(platformTimes, 50) / pct(rawTimes, 50)).toFixed(2),
      '<= 1.3',
    ],
    [
      '(b) per task, p90 ms',
      pct(rawTimes, 90).toFixed(0),
      pct(platformTimes, 90).toFixed(0),
      (pct(platformTimes, 90) / pct(rawTimes, 90)).toFixed(2),
      '',
    ],
    ['(c) submit -> agent start, p50 ms', '', pct(startLatencies, 50).toFixed(0), '', '<= 100'],
    ['(c) submit -> agent start, p90 ms', '', pct(startLatencies, 90).toFixed(0), '', ''],
  ];
  console.log(
    `\nAutoDev bench: ${DURATION} s of load per server (16 connections), ${TASKS} tasks per side; ${new Date().toISOString()}`,
  );
  console.log(
    'baseline (a): bare node:http + JSON.parse + the same SQLite insert; baseline (b): raw git fetch, worktree add, agent, commit, push (one task of each side in turn)\n',
  );
  console.log(table(['measure', 'baseline', 'autodev', 'ratio', 'target'], rows));
  rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
