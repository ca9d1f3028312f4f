import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/** When a task's last attempt started, and when it ended (its recorded times). */
const startOf = (t: Task) => Date.parse(t.attempts[t.attempts.length - 1]?.startedAt ?? 'x');
const endOf = (t: Task) => Date.parse(t.attempts[t.attempts.length - 1]?.endedAt ?? 'x');

describe('batches and dependencies through the HTTP API (real server, git remote, fake claude)', () => {
  let dir: string;
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;
  let token: string;

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const batch = (tasks: object[], headers: Record<string, string> = {}) =>
    call('POST', '/v1/tasks:batch', { tasks }, headers);
  const entry = (key: string, prompt: string, extra: object = {}) => ({
    key,
    repo: remote,
    prompt,
    ...extra,
  });
  const get = async (id: string) => (await call('GET', `/v1/tasks/${id}`)).body as unknown as Task;
  const ended = (id: string, ms = 30_000) =>
    until(
      async () => {
        const t = await get(id);
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) && t;
      },
      ms,
      `task ${id} to end`,
    );
  const count = async () => ((await call('GET', '/v1/tasks?limit=500')).body.items as Task[]).length;

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_MAX_ATTEMPTS: '1',
        AUTODEV_CONCURRENCY: '4',
        AUTODEV_BREAKER_FAILURES: '1000',
        AUTODEV_PROVIDER_RATE: '1000',
      }),
    );
    token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
    env = { ...server.env, AUTODEV_TOKEN: token };
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs a batch in the order of its dependencies, each after what it depends on ended; a repeat is the same batch', async () => {
    // Arrange: schema ← api ← ui, and docs beside them
    const tasks = [
      entry('ui', 'Add the UI [fake:edit=UI.md]', { dependsOn: ['api'] }),
      entry('schema', 'Add the schema [fake:sleep=300] [fake:edit=SCHEMA.md]'),
      entry('api', 'Add the API [fake:sleep=200] [fake:edit=API.md]', { dependsOn: ['schema'] }),
      entry('docs', 'Write docs [fake:edit=DOCS.md]'),
    ];
    // Act
    const first = await batch(tasks, { 'idempotency-key': 'batch-order' });
    const again = await batch(tasks, { 'idempotency-key': 'batch-order' });
    const other = await batch([tasks[3] as object], { 'idempotency-key': 'batch-order' });
    // Assert
    expect(first.status).toBe(201);
    const made = first.body.tasks as Task[];
    expect(made.map((t) => [t.key, t.status])).toEqual([
      ['ui', 'blocked'],
      ['schema', 'queued'],
      ['api', 'blocked'],
      ['docs', 'queued'],
    ]);
    expect(again.status).toBe(200);
    expect((again.body.tasks as Task[]).map((t) => t.id)).toEqual(made.map((t) => t.id));
    expect(other.status).toBe(409);
    const [ui, schema, api] = await Promise.all(made.slice(0, 3).map((t) => ended(t.id)));
    for (const t of [ui, schema, api]) expect(t?.status).toBe('succeeded');
    expect(api?.dependsOn).toEqual([schema?.id]);
    expect(startOf(api as Task)).toBeGreaterThanOrEqual(endOf(schema as Task));
    expect(startOf(ui as Task)).toBeGreaterThanOrEqual(endOf(api as Task));
  });

  it('refuses a batch with one bad entry, a cycle or an unknown id with a 400 naming it, and stores none', async () => {
    // Arrange
    const before = await count();
    // Act
    const bad = await batch([
      entry('a', 'Fine'),
      { key: 'b', repo: remote, prompt: 'x', priority: 'urgent' },
    ]);
    const cycle = await batch([entry('a', 'A', { dependsOn: ['b'] }), entry('b', 'B', { dependsOn: ['a'] })]);
    const unknown = await batch([
      entry('a', 'A'),
      entry('b', 'B', { dependsOn: ['t0000000000nosuchtask0'] }),
    ]);
    const tooMany = await batch(Array.from({ length: 101 }, (_, i) => entry(`k${i}`, 'x')));
    // Assert
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('tasks.1.priority');
    expect(cycle.status).toBe(400);
    expect((cycle.body.error as { message: string }).message).toContain('cycle: a → b → a');
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain('tasks.1.dependsOn');
    expect(tooMany.status).toBe(400);
    expect(await count()).toBe(before);
  });

  it('fails a chain of three to its end when the first fails, and runs a task that says so anyway, after it', async () => {
    // Arrange: root fails at once (bad key); mid ← root, leaf ← mid; anyway ← root runs regardless
    const made = (
      await batch([
        entry('root', 'Root [fake:sleep=200] [fake:bad_key]'),
        entry('leaf', 'Leaf', { dependsOn: ['mid'] }),
        entry('mid', 'Mid', { dependsOn: ['root'] }),
        entry('anyway', 'Clean up [fake:edit=CLEANUP.md]', {
          dependsOn: ['root'],
          onDependencyFailure: 'run',
        }),
      ])
    ).body.tasks as Task[];
    // Act
    const [root, leaf, mid, anyway] = await Promise.all(made.map((t) => ended(t.id)));
    // Assert
    expect(root?.error?.code).toBe('auth');
    expect(mid).toMatchObject({ status: 'failed', error: { code: 'dependency_failed' } });
    expect(leaf).toMatchObject({ status: 'failed', error: { code: 'dependency_failed' } });
    expect(leaf?.error?.message).toContain(mid?.id);
    expect(mid?.attempts).toHaveLength(0);
    expect(leaf?.attempts).toHaveLength(0);
    expect(anyway?.status).toBe('succeeded');
    expect(startOf(anyway as Task)).toBeGreaterThanOrEqual(endOf(root as Task));
  });

  it('fails the dependents of a cancelled task, and keeps single submissions with dependsOn working', async () => {
    // Arrange: slow ← waiting ← after (waiting is cancelled while blocked)
    const made = (
      await batch([
        entry('slow', 'Slow [fake:sleep=1500] [fake:edit=SLOW.md]'),
        entry('waiting', 'Waiting', { dependsOn: ['slow'] }),
        entry('after', 'After', { dependsOn: ['waiting'] }),
      ])
    ).body.tasks as Task[];
    const [slow, waiting, after] = made as [Task, Task, Task];
    const single = await call('POST', '/v1/tasks', { repo: remote, prompt: 'Single', dependsOn: [slow.id] });
    // Act
    expect((await call('POST', `/v1/tasks/${waiting.id}/cancel`)).status).toBe(202);
    // Assert
    const afterEnd = await ended(after.id, 10_000);
    expect(afterEnd.error).toMatchObject({ code: 'dependency_failed' });
    expect(afterEnd.error?.message).toContain(`${waiting.id} ended cancelled`);
    expect(single.status).toBe(201);
    expect((single.body as unknown as Task).status).toBe('blocked');
    const [slowEnd, singleEnd] = await Promise.all([
      ended(slow.id),
      ended((single.body as { id: string }).id),
    ]);
    expect(singleEnd.status).toBe('succeeded');
    expect(startOf(singleEnd)).toBeGreaterThanOrEqual(endOf(slowEnd));
  });

  it('submits a YAML file as one batch with the CLI and waits for every task', async () => {
    // Arrange
    const file = join(dir, 'tasks.yaml');
    writeFileSync(
      file,
      [
        'defaults:',
        '  repo: ./remote.git',
        'tasks:',
        '  - key: first',
        '    prompt: First [fake:edit=FIRST.md]',
        '  - key: second',
        '    prompt: Second [fake:edit=SECOND.md]',
        '    dependsOn: [first]',
        '',
      ].join('\n'),
    );
    // Act
    const r = await cli(['submit', '--file', file, '--wait', '--json'], env);
    // Assert
    expect(r.code).toBe(0);
    const tasks = JSON.parse(r.stdout) as Task[];
    expect(tasks.map((t) => [t.key, t.status])).toEqual([
      ['first', 'succeeded'],
      ['second', 'succeeded'],
    ]);
    expect(tasks[0]?.repo).toBe(remote);
    expect(startOf(tasks[1] as Task)).toBeGreaterThanOrEqual(endOf(tasks[0] as Task));
  });
});
