import { describe, expect, it } from '@jest/globals';
import { VersionConflictError } from '../../../lib/core/errors.js';
import { transition } from '../../../lib/core/lifecycle.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { abandonAttempt, reapExpired, recordAttempt } from '../../../lib/core/workflow.js';
import { admitOne, mutateTask, prepareNext } from '../../../lib/core/workflow-engine.js';
import { makeTask } from '../../support/tasks.js';

const T0 = new Date('2026-12-02T10:00:00Z');
const usage = { inputTokens: 10, outputTokens: 5, costUsd: 0.01 };

/** A store with DynamoDB's and SQLite's conditional writes: `put` fails when the version moved. */
class MemoryStore {
  readonly tasks = new Map<string, Task>();
  puts = 0;
  /** Another writer moves the task this many times, right before our writes. */
  interfere = 0;
  async getById(id: string) {
    return structuredClone(this.tasks.get(id));
  }
  async put(task: Task, expected: number) {
    const stored = this.tasks.get(task.id);
    if (this.interfere > 0 && stored) {
      this.interfere--;
      this.tasks.set(task.id, { ...stored, version: stored.version + 1 });
      throw new VersionConflictError('moved');
    }
    if (stored?.version !== expected) throw new VersionConflictError('moved');
    this.puts++;
    this.tasks.set(task.id, structuredClone(task));
  }
}

/** A task running attempt 1 under `owner`'s lease. */
function running(owner = 'exec-1', overrides: Partial<Task> = {}): Task {
  return transition(
    makeTask({ createdAt: T0.toISOString(), ...overrides }),
    'running',
    {
      attempts: [{ number: 1, provider: 'claude', startedAt: T0.toISOString(), outcome: 'running' }],
      lease: { owner, expiresAt: T0.getTime() + 60_000 },
    },
    T0,
  );
}

describe('mutateTask (conditional writes, read again when another writer won)', () => {
  it('applies the change on the latest version after conflicts', async () => {
    // Arrange
    const store = new MemoryStore();
    const task = makeTask();
    store.tasks.set(task.id, task);
    store.interfere = 2;
    // Act
    const moved = await mutateTask(store, task.id, (t) => ({ ...t, summary: 'x', version: t.version + 1 }));
    // Assert
    expect(moved?.after).toMatchObject({ summary: 'x', version: 3 });
    expect(store.tasks.get(task.id)?.version).toBe(3);
  });

  it('gives up with a conflict when the task keeps changing', async () => {
    const store = new MemoryStore();
    const task = makeTask();
    store.tasks.set(task.id, task);
    store.interfere = 100;
    await expect(mutateTask(store, task.id, (t) => ({ ...t, version: t.version + 1 }), 3)).rejects.toThrow(
      /kept changing/,
    );
  });
});

describe('admitOne (provider admission shared by both engines)', () => {
  it("skips a provider at its engine's limit and takes a place on the next", async () => {
    // Arrange
    const taken: string[] = [];
    const slots = {
      full: (p: string) => (p === 'claude' ? 'at its limit of 1 at once' : undefined),
      take: (p: string) => void taken.push(p),
    };
    // Act
    const admitted = await admitOne({ candidates: ['claude', 'codex'], slots, now: T0 });
    // Assert
    expect(admitted).toEqual({ provider: 'codex', skipped: ['claude (at its limit of 1 at once)'] });
    expect(taken).toEqual(['codex']);
  });

  it('says how long to wait when every provider is full', async () => {
    const slots = { full: () => 'at its limit of 1 at once', take: () => undefined };
    const admitted = await admitOne({ candidates: ['claude'], slots, now: T0, minWaitMs: 10 });
    expect(admitted).toMatchObject({
      waitMs: 1000,
      reason: 'no provider admits work now: claude (at its limit of 1 at once)',
    });
  });
});

describe('prepareNext (the prepare step over the store)', () => {
  it('starts the attempt under a short lease an executor renews, and records the executor', async () => {
    // Arrange
    const store = new MemoryStore();
    const task = transition(
      makeTask(),
      'running',
      { lease: { owner: 'exec-1', expiresAt: T0.getTime() + 1 } },
      T0,
    );
    store.tasks.set(task.id, task);
    const deps = { store, roles: BUILT_IN_ROLES, available: () => true };
    // Act
    const out = await prepareNext(deps, {
      taskId: task.id,
      leaseOwner: 'exec-1',
      now: T0,
      leaseMs: 5000,
      executor: 'exec-1',
    });
    // Assert
    expect(out).toMatchObject({ action: 'run', moved: true, plan: { attempt: 1, provider: 'claude' } });
    const stored = store.tasks.get(task.id);
    expect(stored?.lease).toEqual({ owner: 'exec-1', expiresAt: T0.getTime() + 5000 });
    expect(stored?.attempts).toMatchObject([{ number: 1, executor: 'exec-1', outcome: 'running' }]);
  });

  it('leaves a task another executor holds', async () => {
    const store = new MemoryStore();
    const task = running('exec-2');
    store.tasks.set(task.id, task);
    const out = await prepareNext(
      { store, roles: BUILT_IN_ROLES, available: () => true },
      { taskId: task.id, leaseOwner: 'exec-1', now: T0 },
    );
    expect(out).toMatchObject({ action: 'stop', moved: false, reason: 'the task belongs to exec-2' });
    expect(store.puts).toBe(0);
  });
});

describe('recordAttempt keeps what earlier attempts left', () => {
  it("keeps the task's pull request and gates when the last attempt names none, and records the ledger", () => {
    // Arrange
    const pullRequest = { url: 'https://forge.example/acme/app/pull/7' };
    const gates = [{ name: 'test', ok: false, exitCode: 1, durationMs: 5 }];
    const calls = [
      {
        at: T0.toISOString(),
        provider: 'anthropic',
        model: 'm',
        inputTokens: 10,
        cachedInputTokens: 0,
        cacheWriteTokens: 0,
        outputTokens: 5,
        costUsd: 0.01,
        status: 200,
        durationMs: 3,
      },
    ];
    const task = running('exec-1', { pullRequest, gates });
    const role = BUILT_IN_ROLES.backend as NonNullable<(typeof BUILT_IN_ROLES)['backend']>;
    // Act
    const ok = recordAttempt({
      task,
      role,
      attempt: 1,
      report: { ok: true, usage, calls },
      available: () => true,
      now: T0,
    });
    const failed = recordAttempt({
      task,
      role,
      attempt: 1,
      report: { ok: false, errorClass: 'budget', fatalCode: 'budget_exceeded', usage },
      available: () => true,
      now: T0,
    });
    // Assert
    expect(ok.task).toMatchObject({ status: 'succeeded', pullRequest });
    expect(ok.task.attempts[0]?.calls).toEqual(calls);
    expect(failed.task).toMatchObject({ status: 'failed', gates, error: { code: 'budget_exceeded' } });
  });
});

describe('reapExpired with a lost owner, abandonAttempt on shutdown', () => {
  it('takes a task back at once from an executor known to be gone, and only from that one', () => {
    const task = running('host/42/gone');
    const lost = { owner: 'host/42/gone', description: 'its executor (host/42/gone) is gone' };
    const reaped = reapExpired(task, BUILT_IN_ROLES.backend, T0, lost);
    expect(reaped).toMatchObject({ status: 'queued', lease: undefined });
    expect(reaped?.attempts[0]).toMatchObject({
      outcome: 'abandoned',
      message: `abandoned: ${lost.description}`,
    });
    expect(reapExpired(running('host/43/alive'), BUILT_IN_ROLES.backend, T0, lost)).toBeUndefined();
  });

  it('queues the task again with the attempt abandoned and its usage kept, unless a cancel was asked', () => {
    const input = { attempt: 1, usage, leaseOwner: 'exec-1', now: T0, message: 'the server stopped' };
    const queued = abandonAttempt({ task: running(), ...input });
    expect(queued).toMatchObject({ status: 'queued', usage: { costUsd: 0.01 }, lease: undefined });
    expect(queued?.attempts[0]).toMatchObject({ outcome: 'abandoned', message: 'the server stopped' });
    expect(abandonAttempt({ task: { ...running(), cancelRequested: true }, ...input })).toBeUndefined();
    expect(abandonAttempt({ task: running('exec-2'), ...input })).toBeUndefined();
  });
});
