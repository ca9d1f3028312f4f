import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  processesWith,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

describe('the local platform, end to end (real server, CLI, git remote, fake claude)', () => {
  let dir: string;
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;

  const submit = async (prompt: string, extra: string[] = []) => {
    const r = await cli(
      // pinned: these tests watch the fake claude's answers, never a failover to another CLI
      [
        'submit',
        '--repo',
        remote,
        '--prompt',
        prompt,
        '--provider',
        'claude',
        '--pin',
        '--wait',
        '--json',
        ...extra,
      ],
      env,
    );
    const json = r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'));
    return { ...r, task: JSON.parse(json) as Task };
  };
  const remoteBranch = (branch: string) =>
    gitIn(remote, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).trim();

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir, { 'README.md': '# demo\n', 'src/app.js': 'export const x = 1;\n' });
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_MAX_ATTEMPTS: '2',
        AUTODEV_CONCURRENCY: '4',
        AUTODEV_BREAKER_FAILURES: '1000',
        AUTODEV_PROVIDER_RATE: '1000',
      }),
    );
    const token = await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env);
    expect(token.code).toBe(0);
    env = { ...server.env, AUTODEV_TOKEN: token.stdout.trim() };
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs an agent that edits the repo and pushes a branch with the task trailer', async () => {
    // Act
    const { code, task, stderr } = await submit('Add a notes file [fake:edit=NOTES.md]');
    // Assert
    expect(code).toBe(0);
    expect(stderr).toContain(`${task.id} is succeeded`);
    expect(task).toMatchObject({
      status: 'succeeded',
      tenant: 'acme',
      provider: 'claude',
      branch: `autodev/${task.id}`,
      summary: 'Updated NOTES.md as asked.',
      usage: { inputTokens: 8 + 192 + 17004, outputTokens: 32, costUsd: 0.3464 },
    });
    expect(task.attempts).toHaveLength(1);
    expect(task.attempts[0]).toMatchObject({ provider: 'claude', outcome: 'succeeded' });
    expect(task.durationMs).toBeGreaterThan(0);
    expect(remoteBranch(`autodev/${task.id}`)).toBe(task.commit);
    const message = gitIn(remote, ['log', '-1', '--format=%B', task.commit as string]);
    expect(message).toContain(`AutoDev-Task: ${task.id}`);
    expect(gitIn(remote, ['show', `${task.commit}:NOTES.md`])).toContain(
      'Change made by the agent for: Add a notes file',
    );
    expect(gitIn(remote, ['rev-parse', `${task.commit}^`]).trim()).toBe(
      gitIn(remote, ['rev-parse', 'main']).trim(),
    );
    // no worktree is left behind
    const left = () => readdirSync(join(dir, 'home', 'workspaces')).filter((n) => n.startsWith(task.id));
    expect(left().length).toBeLessThanOrEqual(1);
    await until(async () => left().length === 0, 5000, 'the worktree to be removed');
  });

  it('shows progress and the agent log while waiting', async () => {
    const { stdout } = await cli(['submit', '--repo', remote, '--prompt', 'Log something', '--wait'], env);
    expect(stdout).toMatch(/attempt 1 of 2 on claude/);
    expect(stdout).toMatch(/agent process \d+ started/);
    expect(stdout).toMatch(/pushed autodev\//);
    expect(stdout).toMatch(/succeeded {2}role=backend provider=claude/);
  });

  it('ends succeeded with no commit when the agent changes nothing', async () => {
    const { code, task } = await submit('Look around [fake:nochange]');
    expect(code).toBe(0);
    expect(task.status).toBe('succeeded');
    expect(task.commit).toBeUndefined();
    expect(task.branch).toBeUndefined();
    expect(task.summary).toMatch(/^No changes\./);
    expect(gitIn(remote, ['branch', '--list', `autodev/${task.id}`]).trim()).toBe('');
  });

  it('fails with rate_limit when the provider keeps answering 429', async () => {
    const { code, task } = await submit('Always limited [fake:rate_limit]');
    expect(code).toBe(1);
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('rate_limit');
    expect(task.error?.message).toMatch(/rate limiting.*API status 429.*after 2 attempts/);
    expect(task.attempts).toHaveLength(2);
  });

  it('fails at once with auth when the API key is bad', async () => {
    const { code, task } = await submit('Bad key [fake:bad_key]');
    expect(code).toBe(1);
    expect(task.error?.code).toBe('auth');
    expect(task.error?.message).toContain('Invalid API key');
    expect(task.attempts).toHaveLength(1);
  });

  it('kills the whole sandbox when the agent hangs past the timeout: no process is left', async () => {
    // Arrange: the fake and its grandchild carry a token on their command lines
    const token = `hang-${Date.now()}`;
    const submitted = await cli(
      ['submit', '--repo', remote, '--prompt', `Hang [fake:hang=${token}]`, '--timeout', '2'],
      env,
    );
    const id = submitted.stdout.trim();
    // Act: the agent and its grandchild run (seen from outside the sandbox), then the time runs out
    await until(async () => processesWith(`grandchild-${token}`).length > 0, 10_000, 'the grandchild');
    const task = await until(async () => {
      const t = JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task;
      return t.status === 'failed' ? t : undefined;
    });
    // Assert
    expect(task.error?.code).toBe('timeout');
    expect(task.error?.message).toContain('ran past its 2 s limit');
    await until(async () => processesWith(token).length === 0, 5000, 'every process of the agent to die');
  });

  it('applies CPU and memory limits to the agent process', async () => {
    const { task } = await submit('Show limits [fake:limits]', [
      '--memory',
      '512',
      '--cpu',
      '1',
      '--timeout',
      '60',
    ]);
    expect(task.status).toBe('succeeded');
    const limits = gitIn(remote, ['show', `${task.commit}:LIMITS.txt`]);
    expect(limits).toMatch(/Max data size\s+536870912\s+536870912/);
    expect(limits).toMatch(/Max cpu time\s+60\s+60/);
  });

  it('cancels a running task and stops its agent', async () => {
    // Arrange
    const token = `cancel-${Date.now()}`;
    const submitted = await cli(
      ['submit', '--repo', remote, '--prompt', `Slow [fake:sleep=60000] ${token}`],
      env,
    );
    const id = submitted.stdout.trim();
    await until(async () => processesWith(token).length > 0, 10_000, 'the agent to start');
    // Act
    const cancel = await cli(['cancel', id], env);
    // Assert
    expect(cancel.stdout.trim()).toBe(`${id} cancelling`);
    const task = await until(async () => {
      const t = JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task;
      return t.status === 'cancelled' ? t : undefined;
    });
    expect(task.error?.code).toBe('cancelled');
    expect(task.attempts.at(-1)?.outcome).toBe('cancelled');
    await until(async () => processesWith(token).length === 0, 5000, 'the agent to die');
    const again = await cli(['cancel', id], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 .*already ended cancelled/);
  });

  it('cancels a queued task before it runs', async () => {
    // Arrange: a task that waits on a dependency stays blocked
    const slow = (
      await cli(['submit', '--repo', remote, '--prompt', 'Slow [fake:sleep=60000]'], env)
    ).stdout.trim();
    const blocked = (
      await cli(['submit', '--repo', remote, '--prompt', 'After', '--depends-on', slow], env)
    ).stdout.trim();
    expect(JSON.parse((await cli(['status', blocked, '--json'], env)).stdout).status).toBe('blocked');
    // Act
    const r = await cli(['cancel', blocked, '--json'], env);
    // Assert
    expect(JSON.parse(r.stdout).status).toBe('cancelled');
    await cli(['cancel', slow], env);
  });

  it('lists, shows and follows logs through the CLI', async () => {
    const { task } = await submit('Something to list');
    const list = await cli(['list', '--status', 'succeeded', '--limit', '50'], env);
    expect(list.stdout).toContain(task.id);
    const status = await cli(['status', task.id], env);
    expect(status.stdout).toContain(`commit:  ${task.commit}`);
    const logs = await cli(['logs', task.id, '-f'], env);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('task succeeded');
  });

  it('serves Prometheus metrics', async () => {
    const res = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${env.AUTODEV_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/autodev_tasks\{status="succeeded"\} [1-9]/);
    expect(text).toMatch(/autodev_provider_attempts_total\{provider="claude",outcome="rate_limit"\} [1-9]/);
    expect(text).toMatch(/autodev_task_duration_seconds_count\{status="failed"\} [1-9]/);
    expect(text).toContain('autodev_queue_depth');
    expect(text).toMatch(/autodev_agent_start_latency_seconds_count [1-9]/);
  });
});

describe('the local platform with AUTODEV_SANDBOX=off', () => {
  let dir: string;
  let server: RunningServer;

  beforeAll(async () => {
    dir = tempDir();
    server = await startServer(
      platformEnv(join(dir, 'home'), { AUTODEV_SANDBOX: 'off', AUTODEV_MAX_ATTEMPTS: '2' }),
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('says so at start and runs agents unconfined: here one that keeps state outside its worktree', async () => {
    // Arrange
    const remote = makeRemote(dir);
    const token = await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env);
    const env = { ...server.env, AUTODEV_TOKEN: token.stdout.trim() };
    const marker = join(dir, 'fail-once');
    // Act
    const r = await cli(
      ['submit', '--repo', remote, '--prompt', `Retry me [fake:fail_once=${marker}]`, '--wait', '--json'],
      env,
    );
    // Assert
    expect(server.output()).toContain('agents and gates run UNCONFINED');
    const task = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'))) as Task;
    expect(task.attempts.map((a) => [a.outcome, a.errorClass])).toEqual([
      ['failed', 'rate_limit'],
      ['succeeded', undefined],
    ]);
    expect(task.commit).toBeDefined();
  });
});
