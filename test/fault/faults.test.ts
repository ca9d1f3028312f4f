import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import { isAlive } from '../support/local-platform.js';
import {
  cli,
  expectNothingLostOrDuplicated,
  FlakyClaude,
  gitIn,
  type Platform,
  platform,
  until,
} from './support.js';

/**
 * Fault injection against the local platform with real processes: each case asserts the final
 * state, the attempt history, and that nothing was lost or duplicated (tasks, commits, branches).
 */
describe('fault injection', () => {
  let p: Platform | undefined;
  afterEach(async () => {
    await p?.stop();
    p = undefined;
  });

  const pidOf = async (file: string) => {
    await until(async () => existsSync(file) && readFileSync(file, 'utf8').trim() !== '', 10_000, `${file}`);
    return Number(readFileSync(file, 'utf8').trim().split(' ')[0]);
  };

  it('1. the agent process is SIGKILLed mid-task: the attempt is a crash, the retry succeeds', async () => {
    p = await platform();
    const pidfile = join(p.dir, 'agent.pid');
    const id = await p.submit(`Work [fake:sleep=2500] [fake:pidfile=${pidfile}]`, ['--provider', 'claude']);
    process.kill(await pidOf(pidfile), 'SIGKILL');
    const task = await p.waitEnd(id);
    expect(task.status).toBe('succeeded');
    expect(task.attempts.map((a) => [a.outcome, a.errorClass])).toEqual([
      ['failed', 'crash'],
      ['succeeded', undefined],
    ]);
    expect(task.attempts[0]?.message).toContain('killed by SIGKILL');
    expectNothingLostOrDuplicated(p, await p.list(), 1);
  });

  it('2. the server is SIGKILLed mid-dispatch and restarted: every task runs once', async () => {
    p = await platform({ AUTODEV_CONCURRENCY: '2' });
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push(await p.submit(`Task ${i} [fake:sleep=300]`, ['--provider', 'claude']));
    await p.server.stop('SIGKILL');
    const again = await p.another();
    p.env = { ...p.env, AUTODEV_URL: again.url };
    const tasks = await Promise.all(ids.map((id) => p?.waitEnd(id, 60_000) as Promise<Task>));
    expect(tasks.map((t) => t.status)).toEqual(ids.map(() => 'succeeded'));
    for (const t of tasks) expect(t.attempts.filter((a) => a.outcome === 'succeeded')).toHaveLength(1);
    expectNothingLostOrDuplicated(p, await p.list(), 8);
    expect(p.branches()).toHaveLength(8);
  });

  it('3. a provider answers 429 again and again: failover, the breaker opens, then closes', async () => {
    const roles = 'roles:\n  backend:\n    providers: [claude, codex]\n';
    const dir = join((await import('node:os')).tmpdir(), `flaky-${Date.now()}`);
    const flaky = new FlakyClaude(dir);
    p = await platform(
      {
        AUTODEV_CLAUDE_BIN: flaky.bin,
        AUTODEV_BREAKER_FAILURES: '2',
        // long enough that the third task still finds the breaker open on a loaded machine
        AUTODEV_BREAKER_OPEN_SECONDS: '8',
        AUTODEV_CONCURRENCY: '1',
      },
      roles,
    );
    flaky.set('rate_limit');
    const outcomes: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const t = await p.waitEnd(await p.submit(`Limited ${i}`));
      expect(t.status).toBe('succeeded');
      outcomes.push(t.attempts.map((a) => `${a.provider}:${a.errorClass ?? a.outcome}`));
    }
    // two 429s fail over to codex and open claude's breaker; the third task goes to codex directly
    expect(outcomes).toEqual([
      ['claude:rate_limit', 'codex:succeeded'],
      ['claude:rate_limit', 'codex:succeeded'],
      ['codex:succeeded'],
    ]);
    const auth = { authorization: `Bearer ${p.env.AUTODEV_TOKEN}` };
    const metrics = async () => (await fetch(`${p?.server.url}/metrics`, { headers: auth })).text();
    expect(await metrics()).toContain('autodev_provider_breaker_state{provider="claude",state="open"} 1');
    // the provider recovers: after the cool-down one probe goes through and closes the breaker
    flaky.set('ok');
    await until(
      async () => (await metrics()).includes('state="half_open"} 1'),
      20_000,
      'the breaker to half-open',
    );
    const probe = await p.waitEnd(await p.submit('After recovery'));
    expect(probe.attempts.map((a) => `${a.provider}:${a.outcome}`)).toEqual(['claude:succeeded']);
    expect(await metrics()).toContain('autodev_provider_breaker_state{provider="claude",state="closed"} 1');
    expectNothingLostOrDuplicated(p, await p.list(), 4);
  });

  it('4. the provider hangs past the timeout on every attempt: failed, no process left', async () => {
    p = await platform({ AUTODEV_MAX_ATTEMPTS: '2' });
    const pidfile = join(p.dir, 'hang.pid');
    const id = await p.submit(`Hang [fake:hang] [fake:pidfile=${pidfile}]`, [
      '--provider',
      'claude',
      '--timeout',
      '1',
    ]);
    const task = await p.waitEnd(id);
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('timeout');
    expect(task.attempts.map((a) => a.errorClass)).toEqual(['timeout', 'timeout']);
    const pids = readFileSync(pidfile, 'utf8').trim().split(' ').map(Number);
    await until(async () => pids.every((pid) => !isAlive(pid)), 5000, 'the agent group to die');
    expect(p.branches()).toEqual([]);
  });

  it('5. the provider crashes (exit 137): retried, then succeeds with one commit', async () => {
    const flaky = new FlakyClaude(join((await import('node:os')).tmpdir(), `flaky-${Date.now()}-5`));
    p = await platform({ AUTODEV_CLAUDE_BIN: flaky.bin });
    flaky.set('crash_once');
    const task = await p.waitEnd(await p.submit('Crash once', ['--provider', 'claude']));
    expect(task.status).toBe('succeeded');
    expect(task.attempts.map((a) => a.errorClass ?? a.outcome)).toEqual(['crash', 'succeeded']);
    expect(task.attempts[0]?.message).toContain('killed by SIGKILL');
    expectNothingLostOrDuplicated(p, await p.list(), 1);
  });

  it('6. the provider rejects its credentials: no retry on it; failover unless the task is pinned to it', async () => {
    const flaky = new FlakyClaude(join((await import('node:os')).tmpdir(), `flaky-${Date.now()}-6`));
    p = await platform(
      { AUTODEV_CLAUDE_BIN: flaky.bin },
      'roles:\n  backend:\n    providers: [claude, codex]\n',
    );
    flaky.set('bad_key');
    const pinned = await p.waitEnd(await p.submit('Pinned', ['--provider', 'claude', '--pin']));
    expect(pinned.status).toBe('failed');
    expect(pinned.error?.code).toBe('auth');
    expect(pinned.attempts).toHaveLength(1);
    const free = await p.waitEnd(await p.submit('Free to fail over'));
    expect(free.status).toBe('succeeded');
    expect(free.attempts.map((a) => `${a.provider}:${a.errorClass ?? a.outcome}`)).toEqual([
      'claude:auth',
      'codex:succeeded',
    ]);
    // a named provider is a preference: it fails over too
    const preferred = await p.waitEnd(await p.submit('Prefers claude', ['--provider', 'claude']));
    expect(preferred.attempts.map((a) => `${a.provider}:${a.errorClass ?? a.outcome}`)).toEqual([
      'claude:auth',
      'codex:succeeded',
    ]);
    expectNothingLostOrDuplicated(p, await p.list(), 3);
  });

  it('7. the same ready task is dispatched by three servers at once: it runs once', async () => {
    p = await platform({ AUTODEV_EXECUTOR: '0' });
    const id = await p.submit('Only once [fake:sleep=200]', ['--provider', 'claude']);
    const on = { AUTODEV_EXECUTOR: '1' };
    await Promise.all([p.another(on), p.another(on), p.another(on)]);
    const task = await p.waitEnd(id);
    expect(task.status).toBe('succeeded');
    expect(task.attempts).toHaveLength(1);
    expectNothingLostOrDuplicated(p, await p.list(), 1);
  });

  it('8. cancel races completion: every task ends in one consistent state', async () => {
    p = await platform({ AUTODEV_CONCURRENCY: '4' });
    const runs = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const pidfile = join(p?.dir as string, `race-${i}.pid`);
        const id = await (p as Platform).submit(`Race ${i} [fake:sleep=400] [fake:pidfile=${pidfile}]`, [
          '--provider',
          'claude',
        ]);
        await pidOf(pidfile);
        await new Promise((r) => setTimeout(r, 250 + i * 60));
        const res = await cli(['cancel', id], (p as Platform).env);
        return { id, accepted: res.code === 0, refused: /409/.test(res.stderr) };
      }),
    );
    for (const run of runs) {
      const t = await (p as Platform).waitEnd(run.id);
      expect(run.accepted || run.refused).toBe(true);
      if (run.accepted) {
        expect(t.status).toBe('cancelled');
        expect(t.attempts.at(-1)?.outcome).toBe('cancelled');
      } else {
        expect(t.status).toBe('succeeded');
        expect(t.commit).toBeDefined();
      }
    }
    expectNothingLostOrDuplicated(p, await p.list(), 8);
  });

  it("9. the task branch moved on the remote: the agent's commit goes on top (or replaces its own)", async () => {
    p = await platform();
    const clone = join(p.dir, 'human');
    gitIn(p.dir, ['clone', '--quiet', p.remote, clone]);
    const pushTo = (id: string, message: string) => {
      gitIn(clone, ['checkout', '--quiet', '-B', `autodev/${id}`, 'origin/main']);
      writeFileSync(join(clone, 'HUMAN.md'), `${message}\n`);
      gitIn(clone, ['add', '.']);
      gitIn(clone, ['commit', '--quiet', '-m', message]);
      gitIn(clone, ['push', '--quiet', '--force', 'origin', `autodev/${id}`]);
      return gitIn(clone, ['rev-parse', 'HEAD']).trim();
    };
    // someone else pushed to the task branch meanwhile: rebase on top, never over it
    const a = await p.submit('Moved [fake:sleep=1500]', ['--provider', 'claude']);
    await until(async () => (await p?.status(a))?.attempts.length === 1, 10_000, 'the attempt');
    const human = pushTo(a, 'A human fix');
    const ta = await p.waitEnd(a);
    expect(ta.error).toBeUndefined();
    expect(ta.status).toBe('succeeded');
    expect(p.branchCommits(a)).toEqual([ta.commit, human]);
    // an earlier attempt of this very task pushed, then died: replace it, do not stack on it
    const b = await p.submit('Replaced [fake:sleep=1500]', ['--provider', 'claude']);
    await until(async () => (await p?.status(b))?.attempts.length === 1, 10_000, 'the attempt');
    pushTo(b, `Earlier attempt\n\nAutoDev-Task: ${b}`);
    const tb = await p.waitEnd(b);
    expect(tb.status).toBe('succeeded');
    expect(p.branchCommits(b)).toEqual([tb.commit]);
    const logs = await cli(['logs', b], p.env);
    expect(logs.stdout).toContain("replaced this task's earlier push");
  });

  it('10. two servers dispatch from one store at once: each task runs exactly once', async () => {
    p = await platform({ AUTODEV_CONCURRENCY: '2' });
    await p.another();
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (p as Platform).submit(`Shared ${i} [fake:sleep=300]`, ['--provider', 'claude']),
      ),
    );
    const tasks = await Promise.all(ids.map((id) => p?.waitEnd(id, 60_000) as Promise<Task>));
    expect(tasks.map((t) => [t.status, t.attempts.map((a) => `${a.outcome} ${a.message ?? ''}`)])).toEqual(
      tasks.map(() => ['succeeded', ['succeeded ']]),
    );
    const executors = new Set(tasks.map((t) => t.attempts[0]?.executor));
    expect(executors.size).toBe(2);
    expectNothingLostOrDuplicated(p, await p.list(), 10);
  });

  it('11. the workspace disk is full: the task fails clearly (workspace), the server lives, a retry succeeds', async () => {
    const mnt = join((await import('node:os')).tmpdir(), `autodev-full-${Date.now()}`);
    mkdirSync(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    try {
      p = await platform({ AUTODEV_WORKSPACES: mnt, AUTODEV_MAX_ATTEMPTS: '2' });
      const filler = join(mnt, 'filler');
      execFileSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=4k 2>/dev/null || true`]);
      const id = await p.submit('Needs disk', ['--provider', 'claude']);
      const failed = await p.waitEnd(id);
      expect(failed.status).toBe('failed');
      // the machine's fault, not the provider's: failed at once, no retry, no provider blamed
      expect(failed.error?.code).toBe('workspace');
      expect(failed.error?.message).toMatch(/^The disk is full: .*no space left on device/i);
      expect(failed.attempts.map((a) => a.errorClass)).toEqual(['workspace']);
      expect((await fetch(`${p.server.url}/healthz`)).status).toBe(200);
      rmSync(filler);
      const retried = await cli(['retry', id], p.env);
      expect(retried.stdout.trim()).toBe(`${id} queued`);
      const done = await p.waitEnd(id);
      expect(done.status).toBe('succeeded');
      expect(done.attempts.map((a) => a.outcome)).toEqual(['failed', 'succeeded']);
      expectNothingLostOrDuplicated(p, await p.list(), 1);
    } finally {
      await p?.stop();
      p = undefined;
      execFileSync('umount', ['-l', mnt]);
    }
  });

  it('12. a lease expires while its server is only slow; when it comes back it does not push', async () => {
    p = await platform({ AUTODEV_LEASE_SECONDS: '1.5' });
    const pidfile = join(p.dir, 'slow.pid');
    const id = await p.submit(`Slow [fake:sleep=3000] [fake:pidfile=${pidfile}]`, ['--provider', 'claude']);
    await pidOf(pidfile);
    const slow = p.server;
    slow.proc.kill('SIGSTOP');
    const other = await p.another();
    p.env = { ...p.env, AUTODEV_URL: other.url };
    await until(
      async () => (await p?.status(id))?.attempts.length === 2,
      15_000,
      'another server to take over',
    );
    slow.proc.kill('SIGCONT');
    const task = await p.waitEnd(id);
    expect(task.status).toBe('succeeded');
    expect(task.attempts.map((a) => `${a.outcome} ${a.message ?? ''}`.trim())).toEqual([
      expect.stringMatching(/^abandoned .*lease expired/),
      'succeeded',
    ]);
    expect(task.attempts[1]?.executor).not.toBe(task.attempts[0]?.executor);
    await new Promise((r) => setTimeout(r, 3500)); // the slow server's agent ends and it tries to finish
    expect(p.branchCommits(id)).toEqual([task.commit]);
    expect((await p.status(id)).version).toBe(task.version);
  });
});
