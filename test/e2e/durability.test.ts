import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  gitIn,
  isAlive,
  makeRemote,
  platformEnv,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

const status = async (id: string, env: NodeJS.ProcessEnv) =>
  JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task;

/**
 * These tests follow agents by the host pids they write outside their worktrees, and let an agent
 * outlive a killed server: both only unconfined (in the sandbox an agent dies with the server).
 */
const UNCONFINED = 'off';

describe('durability of the local platform across stops and crashes', () => {
  it('loses no task and leaves none running when the server is SIGKILLed mid-task', async () => {
    // Arrange: one agent at a time; one task running, one queued behind it
    const dir = tempDir();
    const remote = makeRemote(dir);
    const env = platformEnv(join(dir, 'home'), {
      AUTODEV_SANDBOX: UNCONFINED,
      AUTODEV_CONCURRENCY: '1',
    });
    const first = await startServer(env);
    const pidfile = join(dir, 'agent.pid');
    const running = (
      await cli(
        ['submit', '--repo', remote, '--prompt', `Long [fake:sleep=5000] [fake:pidfile=${pidfile}]`],
        first.env,
      )
    ).stdout.trim();
    const queued = (
      await cli(['submit', '--repo', remote, '--prompt', 'Queued behind'], first.env)
    ).stdout.trim();
    await until(async () => existsSync(pidfile), 10_000, 'the first agent to start');
    const orphan = Number(readFileSync(pidfile, 'utf8').trim());
    expect((await status(queued, first.env)).status).toBe('queued');

    // Act: kill the server without a chance to clean up, then start it again on the same home
    await first.stop('SIGKILL');
    expect(isAlive(orphan)).toBe(true); // the agent runs in its own process group and outlives the server
    const second = await startServer(env);

    // Assert: the orphaned agent is stopped, the running task is re-queued and both finish
    await until(async () => !isAlive(orphan), 10_000, 'the orphaned agent to be killed');
    const done = await until(
      async () => {
        const a = await status(running, second.env);
        const b = await status(queued, second.env);
        return a.status === 'succeeded' && b.status === 'succeeded' ? [a, b] : undefined;
      },
      60_000,
      'both tasks to succeed',
    );
    const [a] = done as [Task, Task];
    expect(a.attempts.map((x) => x.outcome)).toEqual(['abandoned', 'succeeded']);
    expect(a.attempts[0]?.message).toMatch(/abandoned: its executor .* is gone/);
    const logs = await cli(['logs', running], second.env);
    expect(logs.stdout).toContain('re-queued: its executor');
    const all = JSON.parse((await cli(['list', '--json'], second.env)).stdout) as { items: Task[] };
    expect(all.items).toHaveLength(2);
    expect(all.items.filter((t) => t.status === 'running')).toEqual([]);
    // one branch per task on the remote, nothing duplicated
    expect(
      gitIn(remote, ['for-each-ref', '--format=%(refname)', 'refs/heads/autodev/']).trim().split('\n').sort(),
    ).toEqual([`refs/heads/autodev/${queued}`, `refs/heads/autodev/${running}`].sort());
    await second.stop();
  });

  it('re-queues running tasks on Ctrl-C when they do not finish within the drain time', async () => {
    // Arrange
    const dir = tempDir();
    const remote = makeRemote(dir);
    const env = platformEnv(join(dir, 'home'), {
      AUTODEV_SANDBOX: UNCONFINED,
      AUTODEV_DRAIN_SECONDS: '1',
    });
    const first = await startServer(env);
    const pidfile = join(dir, 'agent.pid');
    const id = (
      await cli(
        ['submit', '--repo', remote, '--prompt', `Long [fake:sleep=30000] [fake:pidfile=${pidfile}]`],
        first.env,
      )
    ).stdout.trim();
    await until(async () => existsSync(pidfile), 10_000, 'the agent to start');
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    // Act
    const code = await first.stop('SIGINT');
    // Assert
    expect(code).toBe(0);
    expect(first.output()).toMatch(/draining running tasks for up to 1 s/);
    expect(isAlive(pid)).toBe(false);
    const second = await startServer({ ...env, AUTODEV_URL: undefined });
    const after = await status(id, second.env);
    expect(after.attempts[0]).toMatchObject({
      outcome: 'abandoned',
      message: 'the server stopped before the attempt finished',
    });
    await cli(['cancel', id], second.env);
    await second.stop();
  });

  it('lets a task finish when it ends within the drain time', async () => {
    const dir = tempDir();
    const remote = makeRemote(dir);
    const env = platformEnv(join(dir, 'home'), {
      AUTODEV_SANDBOX: UNCONFINED,
      AUTODEV_DRAIN_SECONDS: '20',
    });
    const server = await startServer(env);
    const pidfile = join(dir, 'agent.pid');
    const id = (
      await cli(
        ['submit', '--repo', remote, '--prompt', `Short [fake:sleep=1500] [fake:pidfile=${pidfile}]`],
        server.env,
      )
    ).stdout.trim();
    await until(async () => existsSync(pidfile), 10_000, 'the agent to start');
    expect(await server.stop('SIGTERM')).toBe(0);
    const again = await startServer(env);
    const task = await status(id, again.env);
    expect(task.status).toBe('succeeded');
    expect(task.attempts).toHaveLength(1);
    await again.stop();
  });
});
