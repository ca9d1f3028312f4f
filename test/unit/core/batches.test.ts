import { describe, expect, it } from '@jest/globals';
import type { Principal } from '../../../lib/core/access.js';
import { batchGraph, parseBatch } from '../../../lib/core/batches.js';
import { ValidationError } from '../../../lib/core/errors.js';
import { transition } from '../../../lib/core/lifecycle.js';
import { QuotaExceededError } from '../../../lib/core/quotas.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import { TaskService } from '../../../lib/core/tasks.js';
import { releaseBlocked } from '../../../lib/core/workflow.js';
import { releaseAll } from '../../../lib/core/workflow-engine.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';
import { makeTask } from '../../support/tasks.js';

const acme: Principal = { tenant: 'acme', role: 'submitter', subject: 'ann' };
const repo = 'https://github.com/acme/app.git';
const entry = (key: string, dependsOn: string[] = [], extra: object = {}) => ({
  key,
  repo,
  prompt: `Do ${key}`,
  dependsOn,
  ...extra,
});

function setup(quotas = {}) {
  const store = new SqliteTaskStore(':memory:');
  const ready: string[] = [];
  const service = new TaskService({
    store,
    notifier: {
      taskReady: async (t) => {
        ready.push(t.id);
      },
      cancelRequested: async () => undefined,
    },
    roles: BUILT_IN_ROLES,
    knownProviders: ['claude'],
    quotas,
  });
  return { store, service, ready };
}

/** The 400's field names, or the error itself when it is no ValidationError. */
async function fieldsOf(p: Promise<unknown>): Promise<unknown> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof ValidationError ? (err.details as { field: string }[]).map((d) => d.field) : err;
}

describe('batches', () => {
  it('names the entry and the field of an invalid task', () => {
    expect(() => parseBatch({ tasks: [entry('a'), { key: 'b', repo, prompt: '' }] })).toThrow(
      /tasks\.1\.prompt/,
    );
    expect(() => parseBatch({ tasks: [entry('a'), entry('a')] })).toThrow(
      /task 1 of the batch has the key "a"/i,
    );
    expect(() => parseBatch({ tasks: Array.from({ length: 101 }, (_, i) => entry(`k${i}`)) })).toThrow(
      ValidationError,
    );
    expect(() => parseBatch({ tasks: [] })).toThrow(ValidationError);
  });

  it('orders a batch by its dependencies and refuses a cycle, naming its keys', () => {
    // Arrange
    const ok = [entry('c', ['b']), entry('a'), entry('b', ['a', 'texisting'])];
    // Act
    const graph = batchGraph(ok);
    // Assert
    expect(graph.order).toEqual([1, 2, 0]);
    expect(graph.external).toEqual([[], [], ['texisting']]);
    expect(() => batchGraph([entry('a', ['c']), entry('b', ['a']), entry('c', ['b'])])).toThrow(
      /cycle: a → c → b → a/,
    );
    expect(() => batchGraph([entry('x'), entry('self', ['self'])])).toThrow(/cycle: self → self/);
  });

  it('stores a batch with its dependencies as task ids, blocked until they end, all or none', async () => {
    // Arrange
    const { store, service, ready } = setup();
    // Act
    const { tasks, created } = await service.submitBatch(acme, {
      tasks: [entry('schema'), entry('api', ['schema']), entry('ui', ['api', 'schema'])],
    });
    // Assert
    expect(created).toBe(true);
    const [schema, api, ui] = tasks;
    expect(tasks.map((t) => t.status)).toEqual(['queued', 'blocked', 'blocked']);
    expect(api?.dependsOn).toEqual([schema?.id]);
    expect(ui?.dependsOn).toEqual([api?.id, schema?.id]);
    expect(tasks.map((t) => t.key)).toEqual(['schema', 'api', 'ui']);
    expect(ready).toEqual([schema?.id]);
    // one unknown dependency: a 400 naming it, and nothing stored
    const before = (await store.list('acme', { limit: 500 })).items.length;
    expect(await fieldsOf(service.submitBatch(acme, { tasks: [entry('x'), entry('y', ['tnope'])] }))).toEqual(
      ['tasks.1.dependsOn'],
    );
    expect(await fieldsOf(service.submitBatch(acme, { tasks: [entry('x', [], { role: 'nope' })] }))).toEqual([
      'tasks.0.role',
    ]);
    expect((await store.list('acme', { limit: 500 })).items.length).toBe(before);
  });

  it('counts every task of a batch against the quotas', async () => {
    const { service } = setup({ acme: { activeTasks: 3 } });
    await service.submitBatch(acme, { tasks: [entry('a'), entry('b')] });
    await expect(service.submitBatch(acme, { tasks: [entry('c'), entry('d')] })).rejects.toBeInstanceOf(
      QuotaExceededError,
    );
    await expect(service.submitBatch(acme, { tasks: [entry('c')] })).resolves.toMatchObject({
      created: true,
    });
  });

  it('fails a blocked task whose dependency failed, or runs it when it says so', () => {
    const now = new Date();
    const failed = makeTask({ status: 'failed', error: { code: 'auth', message: 'bad key' } });
    const done = makeTask({ status: 'succeeded' });
    const waiting = makeTask({ status: 'blocked', dependsOn: [failed.id, done.id] });
    expect(releaseBlocked(waiting, [failed, done], now)?.error).toEqual({
      code: 'dependency_failed',
      message: `Dependency ${failed.id} ended failed (auth).`,
    });
    const runs = { ...waiting, onDependencyFailure: 'run' as const };
    expect(releaseBlocked(runs, [failed, done], now)?.status).toBe('queued');
    expect(releaseBlocked(runs, [failed, makeTask({ status: 'running' })], now)).toBeUndefined();
  });

  it('fails a chain of dependents to its end in one release pass, whatever their order', async () => {
    // Arrange: a ← b ← c, listed last first
    const store = new SqliteTaskStore(':memory:');
    const a = makeTask();
    const b = makeTask({ status: 'blocked', dependsOn: [a.id] });
    const c = makeTask({ status: 'blocked', dependsOn: [b.id] });
    for (const t of [a, b, c]) await store.create(t);
    await store.put(transition(a, 'cancelled', {}, new Date()), 0);
    // Act
    const moved = await releaseAll(store, [c, b], new Date());
    // Assert
    expect(moved.map((t) => t.id).sort()).toEqual([b.id, c.id].sort());
    expect((await store.getById(c.id))?.error?.code).toBe('dependency_failed');
  });
});
