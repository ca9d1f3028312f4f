/**
 * `npm run soak`: many tasks through the real local platform with an instant fake Claude that fails
 * a share of its calls at random, with random error classes; the server is SIGKILLed and restarted
 * once halfway. Prints tasks lost, duplicated and stuck, and the final state counts.
 *   SOAK_TASKS (2000), SOAK_FAILURE_RATE (0.1), SOAK_CONCURRENCY (8), SOAK_RESTART (1)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Task } from '../../lib/core/schemas.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI = join(ROOT, 'dist/bin/autodev.js');
const TASKS = Number(process.env.SOAK_TASKS ?? 2000);
const FAILURE_RATE = Number(process.env.SOAK_FAILURE_RATE ?? 0.1);
const CONCURRENCY = process.env.SOAK_CONCURRENCY ?? '8';
const RESTART = process.env.SOAK_RESTART !== '0';
const work = mkdtempSync(join(tmpdir(), 'autodev-soak-'));
const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Soak',
  GIT_AUTHOR_EMAIL: 's@example.com',
  GIT_COMMITTER_NAME: 'Soak',
  GIT_COMMITTER_EMAIL: 's@example.com',
};
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, env: gitEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The instant fake: Claude Code's own result objects; a share of calls fail with a random class. */
function writeFake(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const ok = JSON.stringify({
    type: 'result',
    subtype: 'success',
    is_error: false,
    duration_ms: 5,
    duration_api_ms: 4,
    num_turns: 1,
    result: 'Done.',
    session_id: 'SESSION',
    total_cost_usd: 0.002,
    usage: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 7 },
    permission_denials: [],
  });
  const err = (status: number, text: string) =>
    JSON.stringify({
      type: 'result',
      subtype: 'success',
      is_error: true,
      duration_ms: 5,
      duration_api_ms: 4,
      num_turns: 1,
      result: text,
      session_id: 'SESSION',
      total_cost_usd: 0,
      usage: {
        input_tokens: 0,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: 0,
      },
      permission_denials: [],
      api_error_status: status,
    });
  const threshold = Math.round(FAILURE_RATE * 32768);
  writeFileSync(
    join(dir, 'claude'),
    `#!/bin/bash
if [ "$RANDOM" -lt ${threshold} ]; then
  case $((RANDOM % 5)) in
    0) echo '${err(429, 'API Error: 429 rate_limit_error')}'; exit 1 ;;
    1) echo '${err(529, 'API Error: 529 overloaded_error')}'; exit 1 ;;
    2) echo '${err(401, 'Invalid API key · Please run /login')}'; exit 1 ;;
    3) echo '${err(400, 'Prompt is too long')}'; exit 1 ;;
    4) kill -9 $$ ;;
  esac
fi
echo "change $$ $RANDOM" >> CHANGES.txt
echo '${ok}'
`,
  );
  chmodSync(join(dir, 'claude'), 0o755);
}

function startServer(env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout?.on('data', (c) => {
      out += c;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) res({ proc, url: m[1] as string });
    });
    proc.on('exit', (code) => rej(new Error(`server exited ${code}`)));
  });
}

async function main() {
  const remote = join(work, 'remote.git');
  git(work, 'init', '--quiet', '--bare', '--initial-branch=main', remote);
  git(work, 'clone', '--quiet', remote, join(work, 'seed'));
  writeFileSync(join(work, 'seed', 'README.md'), '# soak\n');
  git(join(work, 'seed'), 'add', '.');
  git(join(work, 'seed'), 'commit', '--quiet', '-m', 'seed');
  git(join(work, 'seed'), 'push', '--quiet', 'origin', 'main');
  const fakeDir = join(work, 'bin');
  writeFake(fakeDir);
  const env = {
    ...process.env,
    PATH: `${fakeDir}:${process.env.PATH}`,
    AUTODEV_HOME: join(work, 'home'),
    AUTODEV_PORT: '0',
    AUTODEV_LOG_LEVEL: 'ERROR',
    AUTODEV_CONCURRENCY: CONCURRENCY,
    AUTODEV_RETRY_BASE_MS: '20',
    AUTODEV_RETRY_MAX_MS: '200',
    AUTODEV_BREAKER_FAILURES: '1000',
    AUTODEV_PROVIDER_RATE: '10000',
    AUTODEV_PROVIDER_BURST: '10000',
    AUTODEV_LEASE_SECONDS: '5',
    // the soak's repository is a bare repository in its work directory
    AUTODEV_LOCAL_REPO_ROOTS: `*=${work}`,
    ANTHROPIC_API_KEY: 'sk-ant-soak',
  };
  let server = await startServer(env);
  const token = execFileSync(
    process.execPath,
    [CLI, 'token', '--tenant', 'soak', '--role', 'operator', '--ttl', '12h'],
    { env, encoding: 'utf8' },
  ).trim();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const started = Date.now();
  const ids = new Set<string>();
  let duplicateSubmits = 0;
  let restarted = false;
  // submit in waves; every 10th submission is sent twice with the same Idempotency-Key
  for (let i = 0; i < TASKS; i++) {
    if (RESTART && !restarted && i === Math.floor(TASKS / 2)) {
      server.proc.kill('SIGKILL');
      await new Promise((r) => server.proc.once('exit', r));
      server = await startServer(env);
      restarted = true;
      process.stderr.write(`[soak] server SIGKILLed and restarted after ${i} submissions\n`);
    }
    const body = JSON.stringify({ repo: remote, prompt: `Soak task ${i}` });
    const send = async () => {
      for (;;) {
        try {
          const res = await fetch(`${server.url}/v1/tasks`, {
            method: 'POST',
            headers: { ...headers, 'idempotency-key': `soak-${i}` },
            body,
          });
          if (res.status === 201 || res.status === 200) return (await res.json()) as Task;
          throw new Error(`status ${res.status}: ${await res.text()}`);
        } catch (err) {
          process.stderr.write(`[soak] submit ${i} failed (${(err as Error).message}); trying again\n`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const t = await send();
    if (i % 10 === 0) {
      const again = await send();
      if (again.id !== t.id) duplicateSubmits++;
    }
    ids.add(t.id);
    if (i % 200 === 0) process.stderr.write(`[soak] ${i}/${TASKS} submitted\n`);
    // keep the queue from growing without bound
    if (i % 50 === 49) {
      for (;;) {
        const q = (await (
          await fetch(`${server.url}/v1/tasks?status=queued&limit=500`, { headers })
        ).json()) as { items: Task[] };
        if (q.items.length < 100) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  // wait for the end
  const deadline = Date.now() + 10 * 60_000;
  let all: Task[] = [];
  for (;;) {
    all = [];
    let cursor: string | undefined;
    do {
      const page = (await (
        await fetch(`${server.url}/v1/tasks?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { headers })
      ).json()) as { items: Task[]; nextCursor?: string };
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    const open = all.filter((t) => !['succeeded', 'failed', 'cancelled'].includes(t.status));
    if (open.length === 0 || Date.now() > deadline) break;
    process.stderr.write(`[soak] waiting for ${open.length} tasks\n`);
    await new Promise((r) => setTimeout(r, 2000));
  }
  const elapsed = (Date.now() - started) / 1000;
  server.proc.kill('SIGTERM');
  const stored = new Set(all.map((t) => t.id));
  const lost = [...ids].filter((id) => !stored.has(id)).length;
  const stuck = all.filter((t) => !['succeeded', 'failed', 'cancelled'].includes(t.status)).length;
  const branches = git(remote, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/autodev/')
    .trim()
    .split('\n')
    .filter(Boolean);
  const withCommit = all.filter((t) => t.status === 'succeeded' && t.commit);
  let duplicatedCommits = 0;
  for (const t of withCommit) {
    const n = git(remote, 'rev-list', '--count', `refs/heads/autodev/${t.id}`, '^refs/heads/main').trim();
    if (n !== '1') duplicatedCommits++;
  }
  const counts: Record<string, number> = {};
  for (const t of all) counts[t.status] = (counts[t.status] ?? 0) + 1;
  const errors: Record<string, number> = {};
  for (const t of all) if (t.error) errors[t.error.code] = (errors[t.error.code] ?? 0) + 1;
  const attempts = all.reduce((n, t) => n + t.attempts.length, 0);
  const rows: [string, string][] = [
    ['tasks submitted', String(ids.size)],
    [
      'duplicate submissions (same Idempotency-Key)',
      `${Math.ceil(TASKS / 10)}, new tasks made: ${duplicateSubmits}`,
    ],
    ['tasks stored', String(all.length)],
    ['lost', String(lost)],
    [
      'duplicated (extra tasks or extra commits)',
      String(all.length - ids.size + duplicatedCommits + (branches.length - withCommit.length)),
    ],
    ['stuck (not terminal)', String(stuck)],
    [
      'final states',
      Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    [
      'failure codes',
      Object.entries(errors)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '-',
    ],
    ['attempts', `${attempts} (${(attempts / all.length).toFixed(2)} per task)`],
    ['branches on the remote', String(branches.length)],
    ['server restarts (SIGKILL)', restarted ? '1' : '0'],
    ['wall time', `${elapsed.toFixed(0)} s (${(all.length / elapsed).toFixed(1)} tasks/s)`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(
    `\nAutoDev soak: ${TASKS} tasks, ${FAILURE_RATE * 100}% of agent calls fail at random, concurrency ${CONCURRENCY}`,
  );
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  rmSync(work, { recursive: true, force: true });
  if (lost || stuck || all.length !== ids.size || duplicatedCommits || duplicateSubmits) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
