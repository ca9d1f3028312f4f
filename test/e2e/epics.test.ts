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

const startOf = (t: Task) => Date.parse(t.attempts[t.attempts.length - 1]?.startedAt ?? 'x');
const endOf = (t: Task) => Date.parse(t.attempts[t.attempts.length - 1]?.endedAt ?? 'x');
/** The fake planning agent's answer: prose, then the plan in a json block. */
const answer = (plan: unknown) =>
  `[fake:answer=${Buffer.from(`Here is the plan.\n\n\`\`\`json\n${JSON.stringify(plan)}\n\`\`\``).toString('base64')}]`;

describe('epics through the HTTP API (real server, git remote, fake claude as the planning agent)', () => {
  let remote: string;
  let server: RunningServer;
  const tokens: Record<string, string> = {};

  const call = async (method: string, path: string, as = 'ann', body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${tokens[as]}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text.startsWith('{') ? JSON.parse(text) : text) as Task };
  };
  const submit = async (prompt: string, extra: object = {}) => {
    const r = await call('POST', '/v1/tasks', 'ann', { repo: remote, prompt, decompose: true, ...extra });
    expect(r.status).toBe(201);
    return r.body;
  };
  const get = async (id: string) => (await call('GET', `/v1/tasks/${id}`)).body;
  const settled = (id: string, ok: (t: Task) => boolean, what: string) =>
    until(
      async () => {
        const t = await get(id);
        return ok(t) && t;
      },
      30_000,
      what,
    );
  const ended = (id: string) =>
    settled(id, (t) => ['succeeded', 'failed', 'cancelled'].includes(t.status), `task ${id} to end`);

  beforeAll(async () => {
    const dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_MAX_ATTEMPTS: '1',
        AUTODEV_CONCURRENCY: '4',
        AUTODEV_BREAKER_FAILURES: '1000',
        AUTODEV_PROVIDER_RATE: '1000',
      }),
    );
    for (const [name, role, subject] of [
      ['ann', 'submitter', 'ann'],
      ['bob', 'submitter', 'bob'],
      ['viewer', 'viewer', 'vic'],
    ] as const) {
      tokens[name] = (
        await cli(['token', '--tenant', 'acme', '--role', role, '--subject', subject], server.env)
      ).stdout.trim();
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('plans, runs the sub-tasks as a batch under the epic in their order, and succeeds when all have', async () => {
    // Arrange: a plan of two, the second after the first
    const plan = {
      tasks: [
        { key: 'api', prompt: 'Add the API [fake:edit=API.md]', dependsOn: ['schema'] },
        { key: 'schema', prompt: 'Add the schema [fake:sleep=300] [fake:edit=SCHEMA.md]' },
      ],
    };
    // Act
    const epic = await submit(`Build the orders feature ${answer(plan)}`);
    const done = await ended(epic.id);
    // Assert
    expect(done.status).toBe('succeeded');
    expect(done.summary).toBe('All 2 sub-task(s) succeeded: api, schema.');
    expect(done.attempts).toHaveLength(1);
    expect(done.branch).toBeUndefined();
    expect(done.epic?.plan).toEqual(plan.tasks.map((t) => ({ dependsOn: [], ...t })));
    expect(done.subtasks?.map((s) => [s.key, s.status])).toEqual([
      ['api', 'succeeded'],
      ['schema', 'succeeded'],
    ]);
    const [api, schema] = await Promise.all((done.subtasks ?? []).map((s) => get(s.id)));
    expect(api?.parent).toBe(epic.id);
    expect(api?.dependsOn).toEqual([schema?.id]);
    expect(api?.branch).toBe(`autodev/${api?.id}`);
    // the sub-tasks started after the planning attempt ended; api after schema ended
    expect(startOf(schema as Task)).toBeGreaterThanOrEqual(endOf(done));
    expect(startOf(api as Task)).toBeGreaterThanOrEqual(endOf(schema as Task));
    const log = (await call('GET', `/v1/tasks/${epic.id}/logs`)).body as unknown as string;
    expect(log).toContain('planning agent: a plan; nothing is committed');
  });

  it('waits for approval with the plan shown, by its submitter (not another, not a viewer), once', async () => {
    // Arrange
    const plan = { tasks: [{ key: 'only', prompt: 'Do the one thing [fake:edit=ONE.md]' }] };
    const epic = await submit(`Plan and wait ${answer(plan)}`, { approval: true });
    // Act
    const waiting = await settled(epic.id, (t) => t.epic?.stage === 'awaiting_approval', 'the plan');
    const byViewer = await call('POST', `/v1/tasks/${epic.id}/approve`, 'viewer');
    const byBob = await call('POST', `/v1/tasks/${epic.id}/approve`, 'bob');
    await new Promise((r) => setTimeout(r, 700));
    const stillWaiting = await get(epic.id);
    const byCli = await cli(['approve', epic.id, '--json'], { ...server.env, AUTODEV_TOKEN: tokens.ann });
    const approved = { status: byCli.code, body: JSON.parse(byCli.stdout) as Task };
    const again = await call('POST', `/v1/tasks/${epic.id}/approve`, 'ann');
    const done = await ended(epic.id);
    // Assert
    expect(waiting.status).toBe('blocked');
    expect(waiting.epic?.plan).toEqual([{ ...plan.tasks[0], dependsOn: [] }]);
    expect(waiting.summary).toContain('Waiting for approval');
    expect(byViewer.status).toBe(403);
    expect(byBob.status).toBe(403);
    expect(stillWaiting.subtasks).toBeUndefined();
    expect(stillWaiting.epic?.stage).toBe('awaiting_approval');
    expect(approved.status).toBe(0);
    expect(approved.body.epic).toMatchObject({ stage: 'running', approvedBy: 'ann' });
    expect(approved.body.subtasks?.map((s) => s.key)).toEqual(['only']);
    expect(again.status).toBe(409);
    expect(done.status).toBe('succeeded');
  });

  it('cancels the sub-tasks that have not ended when the epic is cancelled: the running one stopped, the waiting one never run', async () => {
    // Arrange: a long sub-task and one after it
    const plan = {
      tasks: [
        { key: 'long', prompt: 'Take long [fake:sleep=60000] [fake:edit=LONG.md]' },
        { key: 'next', prompt: 'Then this [fake:edit=NEXT.md]', dependsOn: ['long'] },
      ],
    };
    const epic = await submit(`Build and be stopped ${answer(plan)}`);
    const running = await settled(epic.id, (t) => t.epic?.stage === 'running', 'the sub-tasks');
    const [longId, nextId] = ['long', 'next'].map(
      (k) => running.subtasks?.find((s) => s.key === k)?.id as string,
    );
    await settled(longId as string, (t) => t.status === 'running', 'the long sub-task to start');
    // Act
    const cancelled = await call('POST', `/v1/tasks/${epic.id}/cancel`);
    // Assert
    expect(cancelled.status).toBe(202);
    expect(cancelled.body.status).toBe('cancelled');
    const [long, next] = await Promise.all([ended(longId as string), ended(nextId as string)]);
    expect(long.status).toBe('cancelled');
    expect(next.status).toBe('cancelled');
    expect(next.error?.code).toBe('cancelled');
    expect(next.attempts).toHaveLength(0);
    expect((await get(epic.id)).status).toBe('cancelled');
  });

  it('fails with invalid_plan on a bad plan, and with subtask_failed when a sub-task fails', async () => {
    // Arrange
    const cyclic = {
      tasks: [
        { key: 'a', prompt: 'A', dependsOn: ['b'] },
        { key: 'b', prompt: 'B', dependsOn: ['a'] },
      ],
    };
    const failing = {
      tasks: [
        { key: 'ok', prompt: 'Fine [fake:edit=OK.md]' },
        { key: 'broken', prompt: 'Broken [fake:bad_key]' },
        { key: 'later', prompt: 'Later', dependsOn: ['broken'] },
      ],
    };
    // Act
    const [noPlan, cycle, failed] = await Promise.all([
      submit(`Plan badly ${answer('no plan at all')}`).then((t) => ended(t.id)),
      submit(`Plan a cycle ${answer(cyclic)}`).then((t) => ended(t.id)),
      submit(`Plan a failure ${answer(failing)}`).then((t) => ended(t.id)),
    ]);
    // Assert
    expect(noPlan.error?.code).toBe('invalid_plan');
    expect(noPlan.error?.message).toMatch(/^The plan is not valid: /);
    expect(cycle.error).toEqual({
      code: 'invalid_plan',
      message: "The plan is not valid: The batch's dependencies form a cycle: a → b → a.",
    });
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('subtask_failed');
    expect(failed.error?.message).toContain('Sub-task broken');
    const later = await ended(failed.subtasks?.find((s) => s.key === 'later')?.id as string);
    expect(later.error?.code).toBe('dependency_failed');
  });
});
