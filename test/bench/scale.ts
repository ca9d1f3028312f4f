/**
 * `npm run bench:scale [-- --tasks 1000,10000]`: many tasks through the local platform with an
 * instant fake provider, 16 agents at once, beside the raw git commands doing the same work at the
 * same parallelism. Per run of N tasks (mixed priorities, 10 % depending on an earlier task of their
 * tenant, 10 tenants with a repository each):
 *   submit rate (16 clients), completion rate (tasks/s) against the raw git rate (ratio),
 *   p50/p99 ready → started, the server's peak RSS and RSS at the end, lost/duplicated/stuck counts,
 *   and the list and log routes' latency with N tasks stored.
 * Targets: 0/0/0, completion rate >= 0.8 x raw git, RSS after the largest run within 10 % of after
 * the smallest, list and log routes under 50 ms.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Task } from '../../lib/core/schemas.js';
import {
  CLI,
  GIT_ENV,
  git,
  makeInstantFake,
  makeRemote,
  mintToken,
  pct,
  startProcess,
  stop,
  table,
} from './common.js';

const PARALLEL = 16;
const TENANTS = 10;
const PRIORITIES = ['high', 'normal', 'low'] as const;
/** A run with no task ending for this long stops waiting: what is left is stuck. */
const STALL_MS = Number(process.env.BENCH_STALL_SECONDS ?? 120) * 1000;

const exec = promisify(execFile);
const gitAsync = (cwd: string, ...args: string[]) =>
  exec('git', args, { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024 });

function taskCounts(): number[] {
  const i = process.argv.indexOf('--tasks');
  const given = i >= 0 ? process.argv[i + 1] : process.env.BENCH_SCALE_TASKS;
  return (given ?? '1000,10000').split(',').map((n) => {
    const v = Number(n);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--tasks: "${n}" is not a positive whole number`);
    return v;
  });
}

/** A deterministic pseudo-random sequence (the same mix of tasks on every run). */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1664525 + 1013904223) % 4294967296;
    return s / 4294967296;
  };
}

interface Planned {
  tenant: number;
  priority: (typeof PRIORITIES)[number];
  /** Index of an earlier task of the same tenant this one depends on. */
  dependsOn?: number;
}

function plan(n: number): Planned[] {
  const rnd = seeded(n);
  const out: Planned[] = [];
  for (let i = 0; i < n; i++) {
    const tenant = i % TENANTS;
    const priority = PRIORITIES[Math.floor(rnd() * 3)] as Planned['priority'];
    // 10 % depend on a task of their tenant submitted 1 to 20 rounds earlier
    const back = TENANTS * (1 + Math.floor(rnd() * 20));
    const dependsOn = i % 10 === 5 && i - back >= 0 ? i - back : undefined;
    out.push({ tenant, priority, dependsOn });
  }
  return out;
}

/** Runs `fn` over 0..n-1 with `parallel` workers, in order of index. */
async function pool(n: number, parallel: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
}

function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function timed(n: number, fn: () => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fn();
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${res.url}: ${res.status}`);
    out.push(performance.now() - t);
  }
  return out;
}

interface PlatformResult {
  submitRate: number;
  completionRate: number;
  readyToStarted: number[];
  rss: number;
  peakRss: number;
  lost: number;
  duplicated: number;
  stuck: number;
  failed: number;
  routes: Record<string, number[]>;
}

async function platformRun(
  work: string,
  remotes: string[],
  fakeDir: string,
  n: number,
): Promise<PlatformResult> {
  const env = {
    ...process.env,
    AUTODEV_LOG_LEVEL: 'ERROR',
    AUTODEV_PORT: '0',
    AUTODEV_LOCAL_REPO_ROOTS: `*=${work}`,
    AUTODEV_HOME: join(work, 'home'),
    PATH: `${fakeDir}:${process.env.PATH}`,
    AUTODEV_CONCURRENCY: String(PARALLEL),
    // the provider's token bucket (1 start/s by default) would pace the tasks: this measures the platform
    AUTODEV_PROVIDER_RATE: '10000',
    AUTODEV_PROVIDER_BURST: '10000',
    ANTHROPIC_API_KEY: 'sk-ant-bench',
  };
  const server = await startProcess([CLI, 'serve'], env, /listening on (http:\/\/\S+)/);
  const pid = server.proc.pid as number;
  try {
    const tokens = Array.from({ length: TENANTS }, (_, t) => mintToken(env, `tenant${t}`, 'operator'));
    // operators: they may ask for priority high (AUTODEV_HIGH_PRIORITY_ROLES) and read /metrics
    const operator = tokens[0] as string;
    const headers = (t: number) => ({
      authorization: `Bearer ${tokens[t]}`,
      'content-type': 'application/json',
    });
    const planned = plan(n);
    const ids: string[] = new Array(n);
    const accepted: Promise<string>[] = new Array(n);
    const t0 = performance.now();
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, memory(pid).peak);
    }, 1000);
    const submit = async (i: number): Promise<string> => {
      const p = planned[i] as Planned;
      // a dependency was handed to a client earlier: its id is known once it was accepted
      const dep = p.dependsOn === undefined ? undefined : await accepted[p.dependsOn];
      const res = await fetch(`${server.url}/v1/tasks`, {
        method: 'POST',
        headers: headers(p.tenant),
        body: JSON.stringify({
          repo: remotes[p.tenant],
          prompt: `Change ${i}`,
          priority: p.priority,
          labels: ['scale', `p-${p.priority}`],
          ...(dep && { dependsOn: [dep] }),
        }),
      });
      if (res.status !== 201) throw new Error(`submit ${i}: ${res.status} ${await res.text()}`);
      ids[i] = ((await res.json()) as Task).id;
      return ids[i];
    };
    await pool(n, PARALLEL, async (i) => {
      accepted[i] = submit(i);
      await accepted[i];
    });
    const submitted = performance.now();
    // wait for every task to end, reading the counts the metrics route gives
    let lastDone = -1;
    let lastChange = performance.now();
    for (;;) {
      const text = await (
        await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${operator}` } })
      ).text();
      const count = (s: string) =>
        Number(text.match(new RegExp(`^autodev_tasks\\{status="${s}"\\} (\\d+)`, 'm'))?.[1] ?? 0);
      const done = count('succeeded') + count('failed') + count('cancelled');
      if (done !== lastDone) {
        lastDone = done;
        lastChange = performance.now();
      }
      if (done >= n || performance.now() - lastChange > STALL_MS) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const finished = performance.now();
    clearInterval(sampler);
    const mem = memory(pid);

    // every task as the API lists it, per tenant, page by page
    const tasks = new Map<string, Task>();
    let listedTwice = 0;
    for (let t = 0; t < TENANTS; t++) {
      for (let cursor: string | undefined, first = true; first || cursor; first = false) {
        const page = (await (
          await fetch(`${server.url}/v1/tasks?limit=500${cursor ? `&cursor=${cursor}` : ''}`, {
            headers: headers(t),
          })
        ).json()) as { items: Task[]; nextCursor?: string };
        for (const task of page.items) {
          if (tasks.has(task.id)) listedTwice++;
          tasks.set(task.id, task);
        }
        cursor = page.nextCursor;
      }
    }
    const lost = ids.filter((id) => !tasks.has(id)).length;
    const terminal = new Set(['succeeded', 'failed', 'cancelled']);
    const stuck = [...tasks.values()].filter((t) => !terminal.has(t.status)).length;
    const failed = [...tasks.values()].filter(
      (t) => t.status !== 'succeeded' && terminal.has(t.status),
    ).length;
    // duplicated: a task that ran more than once, or whose commit is on its remote more than once
    const ranTwice = [...tasks.values()].filter((t) => t.attempts.length > 1).length;
    let pushedTwice = 0;
    for (const remote of remotes) {
      const trailers = git(remote, 'log', '--branches', '--format=%(trailers:key=AutoDev-Task,valueonly)');
      const seen = new Map<string, number>();
      for (const id of trailers.split('\n').filter(Boolean)) seen.set(id, (seen.get(id) ?? 0) + 1);
      pushedTwice += [...seen.values()].filter((c) => c > 1).length;
    }
    // ready → started: ready when submitted, or when the last dependency ended
    const readyToStarted: number[] = [];
    for (const task of tasks.values()) {
      const started = task.attempts[0]?.startedAt;
      if (!started) continue;
      const ready = Math.max(
        Date.parse(task.createdAt),
        ...task.dependsOn.map((d) => Date.parse(tasks.get(d)?.updatedAt ?? task.createdAt)),
      );
      readyToStarted.push(Date.parse(started) - ready);
    }

    // the routes people read, with n tasks stored
    const some = ids[Math.floor(n / 2)] as string;
    const someTenant = (planned[Math.floor(n / 2)] as Planned).tenant;
    const page2 = (
      (await (await fetch(`${server.url}/v1/tasks?limit=50`, { headers: headers(0) })).json()) as {
        nextCursor?: string;
      }
    ).nextCursor;
    const get =
      (path: string, t = 0) =>
      () =>
        fetch(`${server.url}${path}`, { headers: headers(t) });
    const routes: Record<string, number[]> = {
      'GET /v1/tasks?limit=50': await timed(30, get('/v1/tasks?limit=50')),
      'GET /v1/tasks, next page': await timed(30, get(`/v1/tasks?limit=50&cursor=${page2}`)),
      'GET /v1/tasks?status=succeeded': await timed(30, get('/v1/tasks?status=succeeded&limit=50')),
      'GET /v1/tasks?label=p-low': await timed(30, get('/v1/tasks?label=p-low&limit=50')),
      'GET /v1/tasks?provider=claude': await timed(30, get('/v1/tasks?provider=claude&limit=50')),
      'GET /v1/tasks/{id}/logs': await timed(30, get(`/v1/tasks/${some}/logs`, someTenant)),
    };
    return {
      submitRate: n / ((submitted - t0) / 1000),
      completionRate: n / ((finished - t0) / 1000),
      readyToStarted,
      rss: mem.rss,
      peakRss: Math.max(peak, mem.peak),
      lost,
      duplicated: listedTwice + ranTwice + pushedTwice,
      stuck,
      failed,
      routes,
    };
  } finally {
    await stop(server.proc);
  }
}

/**
 * The same git work with raw git at the same parallelism: each of 16 workers fetches into its own
 * mirror of the task's repository, adds a worktree, runs the same fake agent, commits and pushes
 * the branch, removes the worktree.
 */
async function rawRun(work: string, remotes: string[], fakeBin: string, n: number): Promise<number> {
  const planned = plan(n);
  const mirrors = new Map<string, string>();
  const mirrorOf = async (worker: number, tenant: number) => {
    const key = `${worker}-${tenant}`;
    let m = mirrors.get(key);
    if (!m) {
      m = join(work, 'raw', `mirror-${key}.git`);
      await gitAsync(work, 'init', '--quiet', '--bare', m);
      await gitAsync(m, 'remote', 'add', 'origin', remotes[tenant] as string);
      mirrors.set(key, m);
    }
    return m;
  };
  mkdirSync(join(work, 'raw'), { recursive: true });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PARALLEL }, async (_, worker) => {
      for (let i = next++; i < n; i = next++) {
        const { tenant } = planned[i] as Planned;
        const mirror = await mirrorOf(worker, tenant);
        await gitAsync(mirror, 'fetch', '--quiet', '--prune', 'origin');
        const wt = join(work, 'raw', `wt-${i}`);
        await gitAsync(
          mirror,
          'worktree',
          'add',
          '--quiet',
          '-B',
          `raw/${i}`,
          wt,
          'refs/remotes/origin/main',
        );
        await exec(fakeBin, ['-p', `Change ${i}`], { cwd: wt });
        await gitAsync(wt, 'add', '--all');
        await gitAsync(wt, 'commit', '--quiet', '-m', `Change ${i}`);
        await gitAsync(wt, 'push', '--quiet', '--force', 'origin', `HEAD:refs/heads/raw/${i}`);
        await gitAsync(mirror, 'worktree', 'remove', '--force', wt);
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

const f0 = (x: number) => x.toFixed(0);
const f1 = (x: number) => x.toFixed(1);
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;

async function main() {
  const counts = taskCounts();
  const results: { n: number; p: PlatformResult; raw: number }[] = [];
  for (const n of counts) {
    const work = mkdtempSync(join(tmpdir(), 'autodev-scale-'));
    try {
      const fake = makeInstantFake(work);
      const remotes = Array.from({ length: TENANTS }, (_, t) => makeRemote(work, `app${t}`));
      const p = await platformRun(work, remotes, fake.dir, n);
      // the raw side on remotes of its own, starting as empty as the platform's did
      const rawRemotes = Array.from({ length: TENANTS }, (_, t) => makeRemote(work, `raw${t}`));
      const raw = await rawRun(work, rawRemotes, fake.bin, n);
      results.push({ n, p, raw });
      console.error(`bench:scale: ${n} tasks done`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const first = results[0] as (typeof results)[number];
  const rows: string[][] = [];
  const row = (measure: string, target: string, cell: (r: (typeof results)[number]) => string) =>
    rows.push([measure, ...results.map(cell), target]);
  row('submit rate, tasks/s (16 clients)', '', (r) => f0(r.p.submitRate));
  row('completion rate, tasks/s', '', (r) => f1(r.p.completionRate));
  row('raw git rate, tasks/s (16 at once)', '', (r) => f1(r.raw));
  row('completion / raw git', '>= 0.8', (r) => (r.p.completionRate / r.raw).toFixed(2));
  row('ready -> started p50, ms', '', (r) => f0(pct(r.p.readyToStarted, 50)));
  row('ready -> started p99, ms', '', (r) => f0(pct(r.p.readyToStarted, 99)));
  row('server peak RSS', '', (r) => mib(r.p.peakRss));
  row(
    'server RSS at the end',
    `within 10 % of ${first.n}`,
    (r) =>
      `${mib(r.p.rss)} (${r.p.rss >= first.p.rss ? '+' : ''}${(((r.p.rss - first.p.rss) / first.p.rss) * 100).toFixed(0)} %)`,
  );
  row('lost / duplicated / stuck', '0 / 0 / 0', (r) => `${r.p.lost} / ${r.p.duplicated} / ${r.p.stuck}`);
  row('failed', '0', (r) => String(r.p.failed));
  for (const route of Object.keys(first.p.routes))
    row(
      `${route} p50 / p99, ms`,
      '< 50',
      (r) => `${f1(pct(r.p.routes[route] as number[], 50))} / ${f1(pct(r.p.routes[route] as number[], 99))}`,
    );
  console.log(
    `\nAutoDev bench:scale: ${PARALLEL} agents at once (instant fake claude, sandbox and gateway session), ${TENANTS} tenants with a repository each, 10 % of tasks with a dependency; ${new Date().toISOString()}`,
  );
  console.log(table(['measure', ...results.map((r) => `${r.n} tasks`), 'target'], rows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
