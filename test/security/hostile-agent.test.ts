import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  FAKES,
  gitIn,
  isAlive,
  makeRemote,
  platformEnv,
  processesWith,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/** What the hostile fake (test/fakes/hostile-claude) records of each thing it tried. */
interface Attempted {
  name: string;
  achieved: boolean;
  how: string;
}

/** Every file under `root` (but `skip`) with its content, to compare before and after. */
function snapshot(root: string, skip: (path: string) => boolean): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (skip(path)) continue;
      if (statSync(path).isDirectory()) walk(path);
      else files.set(path, readFileSync(path, 'base64'));
    }
  };
  walk(root);
  return files;
}

describe('a hostile agent on the local platform (bubblewrap sandbox)', () => {
  const dir = tempDir('autodev-security-');
  const home = join(dir, 'home');
  const canary = `canary-${randomBytes(8).toString('hex')}`;
  const sharedTmp = join(tmpdir(), `autodev-hostile-${randomBytes(6).toString('hex')}`);
  const hookMarker = join(dir, 'planted-program-ran');
  let remote: string;
  let server: RunningServer;
  let acme: NodeJS.ProcessEnv;
  let mallory: NodeJS.ProcessEnv;
  let before: Map<string, string>;
  let other: { id: string; pids: number[] };
  let hostile: Task | undefined;
  let results: Attempted[];
  let uid: number;

  /** What may change while tasks run: the database, locks, and what a fetch writes into a mirror. */
  const changes = (p: string) =>
    /autodev\.db|\.lock$|\/workspaces$|\/(objects|refs|logs)$|FETCH_HEAD|packed-refs|\.tmp-/.test(p);

  const status = async (env: NodeJS.ProcessEnv, id: string) =>
    JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task;

  beforeAll(async () => {
    // Arrange: secrets on disk, a second provider entry that runs the hostile fake, a remote
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'secrets.env'), 'AUTODEV_GITHUB_WEBHOOK_SECRET=whsec-do-not-leak-0123456789\n');
    writeFileSync(
      join(home, 'providers.yaml'),
      `providers:\n  hostile:\n    driver: claude\n    bin: ${join(FAKES, '..', 'hostile-claude')}\n`,
    );
    remote = makeRemote(dir, { 'README.md': '# demo\n' });
    server = await startServer(
      platformEnv(home, {
        AUTODEV_TEST_CANARY: canary,
        AUTODEV_CONCURRENCY: '4',
        AUTODEV_PROVIDER_RATE: '1000',
        AUTODEV_BREAKER_FAILURES: '1000',
        AUTODEV_MAX_ATTEMPTS: '1',
      }),
    );
    const token = async (tenant: string) =>
      (await cli(['token', '--tenant', tenant, '--role', 'operator'], server.env)).stdout.trim();
    acme = { ...server.env, AUTODEV_TOKEN: await token('acme') };
    mallory = { ...server.env, AUTODEV_TOKEN: await token('mallory') };

    // another tenant's agent runs meanwhile, its worktree on disk
    const tag = `other-agent-${randomBytes(4).toString('hex')}`;
    const submitted = await cli(
      ['submit', '--repo', remote, '--prompt', `Slow work [fake:sleep=8000] ${tag}`, '--provider', 'claude'],
      acme,
    );
    const otherId = submitted.stdout.trim();
    await until(async () => processesWith(tag).length > 0, 15_000, 'the other agent to start');
    const agentPid = await until(
      async () => (await status(acme, otherId)).attempts.at(-1)?.agentPid,
      10_000,
      'the agent pid',
    );
    other = { id: otherId, pids: [agentPid, ...processesWith(tag)] };
    const otherDir = readdirSync(join(home, 'workspaces')).find((n) => n.startsWith(otherId)) as string;
    before = snapshot(home, changes);

    // Act: the hostile agent, as another tenant, on the same repository
    const plan = {
      home,
      otherFile: join(home, 'workspaces', otherDir, otherId, 'README.md'),
      otherDir,
      serverPid: server.proc.pid,
      otherAgentPids: other.pids,
      canary,
      sharedTmp,
      hookMarker,
    };
    const prompt = `Probe [hostile:${Buffer.from(JSON.stringify(plan)).toString('base64')}]`;
    const submittedHostile = await cli(
      ['submit', '--repo', remote, '--prompt', prompt, '--provider', 'hostile'],
      mallory,
    );
    const hostileId = submittedHostile.stdout.trim();
    const ended = await until(
      async () => {
        if (!isAlive(server.proc.pid as number)) return { dead: true } as const;
        const t = await status(mallory, hostileId).catch(() => undefined);
        return t && (t.status === 'succeeded' || t.status === 'failed') ? t : undefined;
      },
      60_000,
      'the hostile task to end (or the server to die)',
    );
    hostile = 'dead' in ended ? undefined : ended;
    // what it recorded: from its pushed branch, or (when it stopped the server) from its worktree
    const left = readdirSync(join(home, 'workspaces')).find((n) => n.startsWith(hostileId));
    const recorded = JSON.parse(
      hostile?.commit
        ? gitIn(remote, ['show', `${hostile.commit}:HOSTILE.json`])
        : readFileSync(join(home, 'workspaces', left as string, hostileId, 'HOSTILE.json'), 'utf8'),
    ) as { uid: number; results: Attempted[] };
    results = recorded.results;
    if (process.env.SHOW_HOSTILE) console.log(JSON.stringify(recorded, null, 1));
    uid = recorded.uid;
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(sharedTmp, { force: true }); // there only when the agent was not contained
  });

  /** The attempts matching `pattern` that worked (the allowed capability aside). */
  const achieved = (pattern: RegExp) =>
    results
      .filter((r) => pattern.test(r.name) && r.achieved && r.how !== 'capability')
      .map((r) => `${r.name}: ${r.how}`);

  it('runs as an unprivileged user, and its task ends normally', () => {
    expect(hostile?.status).toBe('succeeded');
    expect(uid).toBe(65534);
  });

  it('reads nothing of the server or of other tenants: key, secrets, database, worktrees, mirrors, environments', () => {
    expect(results.length).toBeGreaterThan(15);
    expect(achieved(/read|list|environ|canary/)).toEqual([]);
  });

  it('writes nothing outside its worktree', () => {
    // Assert: what it says, and what is on disk (a file it put in /tmp stayed in its own)
    expect(achieved(/write|\.git/)).toEqual([]);
    expect(results.find((r) => r.name === 'put a file in /tmp')).toBeDefined();
    expect(existsSync(sharedTmp)).toBe(false);
    const after = snapshot(home, changes);
    const changed = [...after].filter(([p, c]) => before.get(p) !== c).map(([p]) => p);
    const gone = [...before.keys()].filter((p) => !after.has(p));
    expect({ changed, gone }).toEqual({ changed: [], gone: [] });
  });

  it('cannot signal the server or other agents', async () => {
    expect(achieved(/SIGKILL/)).toEqual([]);
    expect(isAlive(server.proc.pid as number)).toBe(true);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const done = await until(
      async () => {
        const t = await status(acme, other.id);
        return t.status === 'succeeded' || t.status === 'failed' ? t : undefined;
      },
      30_000,
      "the other tenant's task to end",
    );
    expect(done.status).toBe('succeeded');
  });

  it("plants nothing for the next task: another tenant's task on the same repository is unaffected", async () => {
    // Act
    const r = await cli(
      ['submit', '--repo', remote, '--prompt', 'Write notes [fake:edit=NOTES.md]', '--provider', 'claude'],
      acme,
    );
    const id = r.stdout.trim();
    const next = await until(
      async () => {
        const t = await status(acme, id);
        return t.status === 'succeeded' || t.status === 'failed' ? t : undefined;
      },
      30_000,
      'the next task to end',
    );
    // Assert
    expect(achieved(/plant/)).toEqual([]);
    expect(next.status).toBe('succeeded');
    expect(gitIn(remote, ['show', `${next.commit}:NOTES.md`])).toBe(
      'Change made by the agent for: Write notes [fake:edit=NOTES.md]\n',
    );
    expect(existsSync(hookMarker)).toBe(false);
  }, 60_000);

  it('can still run git read commands in its own worktree', () => {
    expect(results.find((r) => r.how === 'capability')?.achieved).toBe(true);
  });

  it("runs the repository's quality gates in the sandbox too", async () => {
    // Arrange: a repository whose gate passes only where it can reach nothing of the server
    const repoDir = join(dir, 'gated');
    mkdirSync(repoDir);
    const check = [
      'test "$(id -u)" = 65534',
      `test ! -e '${join(home, 'signing-key')}'`,
      `test ! -e '${join(home, 'autodev.db')}'`,
      `! kill -0 ${server.proc.pid} 2>/dev/null`,
      `! touch '${join(home, 'gate-was-here')}' 2>/dev/null`,
    ]
      .map((step, i) => `${step} && echo 'check ${i} passed'`)
      .join(' && ');
    const gated = makeRemote(repoDir, {
      'README.md': '# gated\n',
      '.autodev.yml': `repairRounds: 0\ndraftOnFailure: false\ngates:\n  - name: contained\n    run: ${JSON.stringify(check)}\n`,
    });
    // Act
    const r = await cli(
      ['submit', '--repo', gated, '--prompt', 'Notes [fake:edit=NOTES.md]', '--provider', 'claude'],
      acme,
    );
    const task = await until(
      async () => {
        const t = await status(acme, r.stdout.trim());
        return t.status === 'succeeded' || t.status === 'failed' ? t : undefined;
      },
      30_000,
      'the gated task to end',
    );
    // Assert
    if (process.env.SHOW_HOSTILE) console.log(JSON.stringify(task.gates));
    expect({ status: task.status, gates: task.gates }).toMatchObject({
      status: 'succeeded',
      gates: [{ name: 'contained', ok: true }],
    });
    expect(existsSync(join(home, 'gate-was-here'))).toBe(false);
  }, 60_000);
});
