import { beforeAll, describe, expect, it } from '@jest/globals';
import { CONTINUE_AFTER_WAITS } from '../../lib/aws/workflow-steps.js';
import { transition } from '../../lib/core/lifecycle.js';
import { DEFAULT_PROVIDER_LIMITS, slotKey } from '../../lib/core/provider-slots.js';
import type { Task } from '../../lib/core/schemas.js';
import { STATES } from '../../lib/infra/workflow.js';
import { makeTask } from '../support/tasks.js';
import {
  type Definition,
  SimStore,
  until,
  type WorkerBehaviour,
  WorkflowSim,
} from '../support/workflow-sim.js';
import { resolveDefinition, synthStack } from './synth.js';

let definition: Definition;
beforeAll(() => {
  const { template } = synthStack();
  const resource = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
  definition = resolveDefinition(resource?.Properties.DefinitionString) as unknown as Definition;
});

const OK: WorkerBehaviour = {
  ok: true,
  summary: 'done',
  usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 },
};

/** A task the dispatcher admitted under execution `<id>-1-v1`. */
function admitted(overrides: Partial<Task> = {}): Task {
  const task = makeTask({ requestedProvider: 'claude', ...overrides });
  return transition(
    task,
    'running',
    { lease: { owner: `${task.id}-1-v1`, expiresAt: Date.now() + 3_600_000 } },
    new Date(),
  );
}

/**
 * One provider (claude) with a single slot; each worker runs until the test lets it finish.
 */
function oneSlot() {
  const store = new SimStore();
  const finish = new Map<string, (b: WorkerBehaviour) => void>();
  const sim = new WorkflowSim({
    definition,
    store,
    available: (p) => p === 'claude',
    limits: () => ({ ...DEFAULT_PROVIDER_LIMITS, concurrency: 1 }),
    worker: (taskId, attempt) => new Promise((resolve) => finish.set(`${taskId}#${attempt}`, resolve)),
    zeroWaits: true,
  });
  const submit = async (task: Task) => {
    store.tasks.set(task.id, task);
    await sim.start(task.lease?.owner as string, { taskId: task.id, tenant: task.tenant });
  };
  return { store, sim, finish, submit };
}

describe('a task waiting for a full provider, on the synthesized state machine', () => {
  it('parks without polling while the provider is full, and runs once a slot frees', async () => {
    // Arrange: A holds claude's only slot
    const { store, sim, finish, submit } = oneSlot();
    const a = admitted();
    const b = admitted();
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    // Act: B arrives while the provider is full
    await submit(b);
    await until(() => sim.parkedToken(b.id) !== undefined);
    const [execB] = sim.executionsOf(b.id);
    const enteredWhileParked = execB?.entered.length;
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    // Assert: parked, nothing runs meanwhile, the waiter is recorded under the provider
    expect(execB?.entered).toEqual([STATES.prepare, STATES.runOrStop, STATES.park]);
    expect(execB?.entered.length).toBe(enteredWhileParked);
    expect(sim.lambdaCalls.prepare).toBe(2);
    expect(store.waitersOf('claude').map((w) => w.taskId)).toEqual([b.id]);
    expect(store.tasks.get(b.id)?.status).toBe('retrying');

    // Act: A ends; its record step frees the slot and resumes B
    finish.get(slotKey(a.id, 1))?.(OK);
    await until(() => finish.has(slotKey(b.id, 1)));
    finish.get(slotKey(b.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    // Assert
    expect(execB?.entered.filter((s) => s === STATES.park)).toHaveLength(1);
    expect(execB?.entered.slice(3)).toEqual([
      STATES.prepare,
      STATES.runOrStop,
      STATES.startAttempt,
      STATES.runWorker,
      STATES.record,
      STATES.retryOrFinish,
      STATES.done,
    ]);
    expect(store.tasks.get(b.id)?.status).toBe('succeeded');
    expect(store.tasks.get(b.id)?.attempts).toHaveLength(1);
    expect(store.waitersOf('claude')).toHaveLength(0);
    expect(Object.keys(store.providers.get('claude')?.slots ?? {})).toEqual([]);
  });

  it('gives the freed slot to the woken task, not to a task that arrives before it prepares again', async () => {
    // Arrange: A holds claude's only slot, B parks
    const { store, sim, finish, submit } = oneSlot();
    const [a, b, c] = [admitted(), admitted(), admitted()];
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    await submit(b);
    await until(() => sim.parkedToken(b.id) !== undefined);
    // C arrives and prepares between B's wake-up and B's own prepare
    sim.callbacks.beforeResume = async () => {
      sim.callbacks.beforeResume = undefined;
      await submit(c);
      await until(() => sim.parkedToken(c.id) !== undefined);
    };
    // Act: A ends; its record step frees the slot and wakes B
    finish.get(slotKey(a.id, 1))?.(OK);
    await until(() => finish.has(slotKey(b.id, 1)));
    // Assert: B runs after a single park; C parked, the slot being B's
    const [execB] = sim.executionsOf(b.id);
    expect(execB?.entered.filter((s) => s === STATES.park)).toHaveLength(1);
    expect(finish.has(slotKey(c.id, 1))).toBe(false);
    expect(sim.parkedToken(c.id)).toBeDefined();
    expect(Object.keys(store.providers.get('claude')?.slots ?? {})).toEqual([slotKey(b.id, 1)]);
    // and C runs next, once B is done
    finish.get(slotKey(b.id, 1))?.(OK);
    await until(() => finish.has(slotKey(c.id, 1)));
    finish.get(slotKey(c.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    expect([a, b, c].map((t) => store.tasks.get(t.id)?.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(store.providers.get('claude')?.reserved).toEqual({});
  });

  it('wakes the one task of a tenant before the 500 another tenant parked first', async () => {
    // Arrange: tenant a holds the only slot and parks 500 more; then tenant b parks one
    const { store, sim, finish, submit } = oneSlot();
    const first = admitted({ tenant: 'a' });
    await submit(first);
    await until(() => finish.has(slotKey(first.id, 1)));
    const burst = Array.from({ length: 500 }, () => admitted({ tenant: 'a' }));
    for (const t of burst) await submit(t);
    const single = admitted({ tenant: 'b' });
    await submit(single);
    await until(() => sim.callbacks.parked.size === burst.length + 1, 100_000);
    // Act: the slot frees
    finish.get(slotKey(first.id, 1))?.(OK);
    await until(() => [...finish.keys()].length === 2);
    // Assert: the first freed slot went to b
    expect([...finish.keys()][1]).toBe(slotKey(single.id, 1));
    expect(store.waitersOf('claude')).toHaveLength(500);
    // Clean up: a's tasks are cancelled, and every execution ends
    for (const t of burst)
      store.tasks.set(t.id, { ...(store.tasks.get(t.id) as Task), cancelRequested: true });
    for (const token of [...sim.callbacks.parked.keys()]) await sim.callbacks.resume(token);
    finish.get(slotKey(single.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    expect(store.tasks.get(single.id)?.status).toBe('succeeded');
    expect(store.providers.get('claude')?.reserved).toEqual({});
    expect(store.providers.get('claude')?.slots).toEqual({});
  }, 60_000);

  it('a single-attempt task on a free provider takes 7 state transitions', async () => {
    const { sim, finish, submit } = oneSlot();
    const a = admitted();
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    finish.get(slotKey(a.id, 1))?.(OK);
    await sim.executionsOf(a.id)[0]?.result;
    expect(sim.executionsOf(a.id)[0]?.entered).toHaveLength(7);
  });

  it('continues a long wait in a fresh execution, without losing or repeating the attempt', async () => {
    // Arrange: A holds the only slot; B parks
    const { store, sim, finish, submit } = oneSlot();
    const a = admitted();
    const b = admitted();
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    await submit(b);
    // Act: B is woken again and again while the provider stays full (wake-ups another task won)
    for (let i = 1; i < CONTINUE_AFTER_WAITS; i++) {
      await until(() => sim.parkedToken(b.id) !== undefined);
      await sim.callbacks.resume(sim.parkedToken(b.id) as string);
    }
    await until(() => sim.executionsOf(b.id).length === 2 && sim.parkedToken(b.id) !== undefined);
    // Assert: the first execution handed the task to `<name>-c1` and ended; that one parks
    const [first, second] = sim.executionsOf(b.id);
    await first?.result;
    expect(first?.entered.filter((s) => s === STATES.park)).toHaveLength(CONTINUE_AFTER_WAITS - 1);
    expect(first?.entered.slice(-2)).toEqual([STATES.continueAsNew, STATES.done]);
    expect(first?.events).toBeLessThan(5000);
    expect(second?.name).toBe(`${b.id}-1-v1-c1`);
    expect(store.tasks.get(b.id)?.lease?.owner).toBe(second?.name);
    expect(store.tasks.get(b.id)?.attempts).toHaveLength(0);

    // Act: the slot frees
    finish.get(slotKey(a.id, 1))?.(OK);
    await until(() => finish.has(slotKey(b.id, 1)));
    finish.get(slotKey(b.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    // Assert: one attempt, run by the continuation, and no third execution
    const after = store.tasks.get(b.id);
    expect(after?.status).toBe('succeeded');
    expect(after?.attempts.map((x) => [x.number, x.outcome])).toEqual([[1, 'succeeded']]);
    expect(sim.executionsOf(b.id)).toHaveLength(2);
    expect(second?.entered.filter((s) => s === STATES.runWorker)).toHaveLength(1);
    expect(first?.entered.includes(STATES.runWorker)).toBe(false);
  });

  it('starts a task the token bucket cannot start yet after a timed wait for its turn, still without polling', async () => {
    // Arrange: a bucket with no token left, 1 start/s
    const { store, sim, finish, submit } = oneSlot();
    const a = admitted();
    store.providers.set('claude', {
      provider: 'claude',
      version: 0,
      breaker: { mode: 'closed', failures: [] },
      bucket: { tokens: 0, updatedAt: Date.now() + 60_000 },
      recent: [],
    });
    // Act
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    finish.get(slotKey(a.id, 1))?.(OK);
    await sim.executionsOf(a.id)[0]?.result;
    // Assert: one prepare, then the wait for its turn
    expect(sim.executionsOf(a.id)[0]?.entered.slice(0, 4)).toEqual([
      STATES.prepare,
      STATES.runOrStop,
      STATES.waitForTurn,
      STATES.startAttempt,
    ]);
    expect(sim.lambdaCalls.prepare).toBe(1);
  });
});
