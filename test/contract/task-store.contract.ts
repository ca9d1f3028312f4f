import { beforeEach, describe, expect, it } from '@jest/globals';
import { ConflictError, VersionConflictError } from '../../lib/core/errors.js';
import { newTaskId } from '../../lib/core/ids.js';
import { transition } from '../../lib/core/lifecycle.js';
import type { TaskStore } from '../../lib/core/ports.js';
import { makeTask } from '../support/tasks.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The behaviour every TaskStore adapter must have. Each adapter's test file calls this with a
 * factory that returns a fresh, empty store.
 */
export function taskStoreContract(name: string, factory: () => Promise<TaskStore>): void {
  describe(`TaskStore contract: ${name}`, () => {
    let store: TaskStore;
    beforeEach(async () => {
      store = await factory();
    });

    it('returns a created task to its tenant only', async () => {
      const task = makeTask();
      await store.create(task);
      expect(await store.get('acme', task.id)).toEqual(task);
      expect(await store.get('globex', task.id)).toBeUndefined();
      expect(await store.get('acme', 'tnope')).toBeUndefined();
    });

    it('moves a task only from the expected version', async () => {
      const task = makeTask();
      await store.create(task);
      const running = transition(task, 'running', {}, new Date());
      await store.put(running, 0);
      const stale = transition(task, 'cancelled', {}, new Date());
      await expect(store.put(stale, 0)).rejects.toBeInstanceOf(VersionConflictError);
      expect((await store.get('acme', task.id))?.status).toBe('running');
    });

    it('lets exactly one of many concurrent writers of one version win', async () => {
      const task = makeTask();
      await store.create(task);
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => store.put({ ...task, summary: `w${i}`, version: 1 }, 0)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(4);
    });

    it('returns the same task for a repeated idempotency key and body', async () => {
      const first = makeTask();
      const claim = { key: 'acme#k1', bodyHash: 'h1', ttlSeconds: 60 };
      expect((await store.create(first, claim)).created).toBe(true);
      const again = await store.create(makeTask(), claim);
      expect(again.created).toBe(false);
      expect(again.task.id).toBe(first.id);
    });

    it('refuses a repeated idempotency key with another body', async () => {
      await store.create(makeTask(), { key: 'acme#k2', bodyHash: 'h1', ttlSeconds: 60 });
      await expect(
        store.create(makeTask(), { key: 'acme#k2', bodyHash: 'h2', ttlSeconds: 60 }),
      ).rejects.toBeInstanceOf(ConflictError);
    });

    it('forgets an idempotency key after its time to live', async () => {
      const claim = { key: 'acme#k3', bodyHash: 'h1', ttlSeconds: 1 };
      const first = makeTask();
      await store.create(first, claim);
      await sleep(1100);
      const later = await store.create(makeTask(), claim);
      expect(later.created).toBe(true);
      expect(later.task.id).not.toBe(first.id);
    });

    it('lists a tenant newest first, filtered, in pages', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const t = makeTask({ role: i % 2 ? 'docs' : 'backend' });
        ids.push(t.id);
        await store.create(t);
        await sleep(2);
      }
      await store.create(makeTask({ tenant: 'globex' }));
      const page1 = await store.list('acme', { limit: 3 });
      expect(page1.items.map((t) => t.id)).toEqual(ids.slice(2).reverse());
      expect(page1.nextCursor).toBeDefined();
      const page2 = await store.list('acme', { limit: 3, cursor: page1.nextCursor });
      expect(page2.items.map((t) => t.id)).toEqual(ids.slice(0, 2).reverse());
      expect(page2.nextCursor).toBeUndefined();
      expect((await store.list('acme', { limit: 10, role: 'docs' })).items).toHaveLength(2);
      expect((await store.list('acme', { limit: 10, status: 'running' })).items).toHaveLength(0);
    });

    it('lists by provider (the one that ran, or the one asked for) and by label, in pages', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const t = makeTask({
          provider: i % 3 === 0 ? 'codex' : undefined,
          requestedProvider: i % 3 === 1 ? 'codex' : undefined,
          labels: i % 2 ? ['ui', 'urgent'] : ['api'],
        });
        ids.push(t.id);
        await store.create(t);
        await sleep(2);
      }
      await store.create(makeTask({ tenant: 'globex', provider: 'codex', labels: ['ui'] }));
      const codex = await store.list('acme', { limit: 10, provider: 'codex' });
      expect(codex.items.map((t) => t.id)).toEqual([ids[4], ids[3], ids[1], ids[0]]);
      const ui1 = await store.list('acme', { limit: 2, label: 'ui' });
      expect(ui1.items.map((t) => t.id)).toEqual([ids[5], ids[3]]);
      const ui2 = await store.list('acme', { limit: 2, label: 'ui', cursor: ui1.nextCursor });
      expect(ui2.items.map((t) => t.id)).toEqual([ids[1]]);
      expect(ui2.nextCursor).toBeUndefined();
      expect((await store.list('acme', { limit: 10, label: 'ur' })).items).toHaveLength(0);
      const both = await store.list('acme', { limit: 10, provider: 'codex', label: 'api' });
      expect(both.items.map((t) => t.id)).toEqual([ids[4], ids[0]]);
    });

    it('appends log lines in order and reads them after a cursor', async () => {
      const task = makeTask();
      await store.create(task);
      await store.appendLogs(task.id, ['one', 'two'], new Date());
      await store.appendLogs(task.id, ['three'], new Date());
      const all = await store.readLogs(task.id, 0, 100);
      expect(all.lines.map((l) => l.text)).toEqual(['one', 'two', 'three']);
      const rest = await store.readLogs(task.id, all.lines[1]?.seq ?? 0, 100);
      expect(rest.lines.map((l) => l.text)).toEqual(['three']);
      expect(rest.lastSeq).toBe(all.lastSeq);
      const none = await store.readLogs(task.id, all.lastSeq, 100);
      expect(none.lines).toEqual([]);
      expect(none.lastSeq).toBe(all.lastSeq);
    });

    it('counts tasks by status', async () => {
      await store.create(makeTask());
      await store.create(makeTask());
      const t = makeTask();
      await store.create(t);
      await store.put(transition(t, 'running', {}, new Date()), 0);
      const counts = await store.countByStatus();
      expect(counts.queued).toBe(2);
      expect(counts.running).toBe(1);
      expect(counts.failed).toBe(0);
    });

    it('stores a batch of 100 tasks with its idempotency key, and answers the same tasks for it again', async () => {
      // Arrange: 100 tasks and a key (past DynamoDB's 100 items in one transaction together)
      const tasks = Array.from({ length: 100 }, (_, i) =>
        makeTask({ key: `k${i}`, id: newTaskId(Date.now() + i) }),
      );
      const claim = { key: 'acme#batch-1', bodyHash: 'hb1', ttlSeconds: 60 };
      // Act
      const first = await store.createBatch(tasks, claim);
      const again = await store.createBatch(
        tasks.map((t) => ({ ...t, id: newTaskId() })),
        claim,
      );
      // Assert
      expect(first.created).toBe(true);
      expect(again.created).toBe(false);
      expect(again.tasks.map((t) => t.id)).toEqual(tasks.map((t) => t.id));
      const stored = await Promise.all(tasks.map((t) => store.get('acme', t.id)));
      expect(stored.map((t) => t?.key)).toEqual(tasks.map((t) => t.key));
      await expect(store.createBatch([makeTask()], { ...claim, bodyHash: 'other' })).rejects.toBeInstanceOf(
        ConflictError,
      );
    });

    it('stores none of a batch when one of its tasks cannot be stored, and gives its key back', async () => {
      // Arrange: the last task's id is taken already
      const taken = makeTask();
      await store.create(taken);
      const tasks = [makeTask(), makeTask(), { ...makeTask(), id: taken.id }];
      const claim = { key: 'acme#batch-2', bodyHash: 'hb2', ttlSeconds: 60 };
      // Act
      const refused = await store.createBatch(tasks, claim).then(
        () => undefined,
        (err: unknown) => err,
      );
      // Assert
      // refused (a native driver's error is an Error of another realm under jest: its message tells)
      expect((refused as { message?: unknown } | undefined)?.message).toEqual(expect.any(String));
      expect(await store.get('acme', tasks[0]?.id as string)).toBeUndefined();
      expect(await store.get('acme', tasks[1]?.id as string)).toBeUndefined();
      expect((await store.get('acme', taken.id))?.prompt).toBe(taken.prompt);
      const later = await store.createBatch([makeTask(), makeTask()], claim);
      expect(later.created).toBe(true);
    });
  });
}
