import { beforeAll, describe, expect, it } from '@jest/globals';
import { wakeAllProviders } from '../../lib/aws/provider-waiters.js';
import { ConfigError } from '../../lib/core/errors.js';
import { transition } from '../../lib/core/lifecycle.js';
import {
  DEFAULT_PROVIDER_LIMITS,
  liveReservations,
  type ProviderLimits,
  slotKey,
} from '../../lib/core/provider-slots.js';
import { admitRoleSlot, releaseRoleSlot, rolePoolLimits, withRoleLimits } from '../../lib/core/role-slots.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
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

/** A task of agent role `role` the dispatcher admitted under execution `<id>-1-v1`. */
function admitted(role: string, overrides: Partial<Task> = {}): Task {
  const task = makeTask({ requestedProvider: 'claude', role, ...overrides });
  return transition(
    task,
    'running',
    { lease: { owner: `${task.id}-1-v1`, expiresAt: Date.now() + 3_600_000 } },
    new Date(),
  );
}

/**
 * The synthesized state machine with the role `ml` limited to `maxConcurrent` attempts at once
 * (ROLE_LIMITS as the stack sets it) and claude's `concurrency`; each worker runs until the test
 * lets it finish.
 */
function limited(maxConcurrent: number, concurrency = 10) {
  const store = new SimStore();
  const pools = new SimStore();
  const finish = new Map<string, (b: WorkerBehaviour) => void>();
  const limits: ProviderLimits = { ...DEFAULT_PROVIDER_LIMITS, burst: 100, concurrency };
  const sim = new WorkflowSim({
    definition,
    store,
    available: (p) => p === 'claude',
    limits: () => limits,
    roles: withRoleLimits(BUILT_IN_ROLES, JSON.stringify({ ml: { maxConcurrent } }), 'ROLE_LIMITS'),
    rolePools: pools,
    worker: (taskId, attempt) => new Promise((resolve) => finish.set(`${taskId}#${attempt}`, resolve)),
    zeroWaits: true,
  });
  const submit = async (task: Task) => {
    store.tasks.set(task.id, task);
    await sim.start(task.lease?.owner as string, { taskId: task.id, tenant: task.tenant });
  };
  const waitersOn = (queue: string) => store.waitersOf(queue).map((w) => w.taskId);
  const roleSlots = () => Object.keys(pools.providers.get('role:ml')?.slots ?? {});
  return { store, pools, sim, finish, submit, waitersOn, roleSlots };
}

describe("a role's maxConcurrent on the synthesized state machine", () => {
  it('parks the role’s next task while it runs maxConcurrent, starts other roles, and runs it once one ends', async () => {
    // Arrange: ml runs at most one attempt at once; claude has room for ten
    const { store, sim, finish, submit, waitersOn, roleSlots } = limited(1);
    const a = admitted('ml');
    const b = admitted('ml');
    const c = admitted('backend');
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    // Act: a second ml task and a backend task arrive
    await submit(b);
    await submit(c);
    await until(() => sim.parkedToken(b.id) !== undefined && finish.has(slotKey(c.id, 1)));
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    // Assert: B parked on the role's queue (not polling), C of another role runs
    const [execB] = sim.executionsOf(b.id);
    expect(execB?.entered).toEqual([STATES.prepare, STATES.runOrStop, STATES.park]);
    expect(waitersOn('role:ml')).toEqual([b.id]);
    expect(waitersOn('claude')).toEqual([]);
    expect(roleSlots()).toEqual([slotKey(a.id, 1)]);
    expect(store.tasks.get(b.id)?.status).toBe('retrying');
    expect(store.logs).toContain(
      'waiting: no attempt may start now: role ml (all 1 of its maxConcurrent running)',
    );

    // Act: A ends; its record step gives the role's slot back and resumes B
    finish.get(slotKey(a.id, 1))?.(OK);
    await until(() => finish.has(slotKey(b.id, 1)));
    // Assert: B holds the role's only slot now
    expect(roleSlots()).toEqual([slotKey(b.id, 1)]);
    finish.get(slotKey(b.id, 1))?.(OK);
    finish.get(slotKey(c.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    expect([a, b, c].map((t) => store.tasks.get(t.id)?.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(execB?.entered.filter((s) => s === STATES.park)).toHaveLength(1);
    expect(roleSlots()).toEqual([]);
    expect(waitersOn('role:ml')).toEqual([]);
  });

  it('runs at most maxConcurrent of the role at once, however many are submitted', async () => {
    // Arrange
    const { store, sim, finish, submit, roleSlots } = limited(2);
    const tasks = Array.from({ length: 6 }, () => admitted('ml'));
    let most = 0;
    // Act: all at once; each worker ends as soon as it started
    for (const t of tasks) await submit(t);
    for (let done = 0; done < tasks.length; ) {
      await until(() => tasks.some((t) => finish.has(slotKey(t.id, 1))));
      const running = tasks.filter((t) => finish.has(slotKey(t.id, 1)));
      most = Math.max(most, running.length, roleSlots().length);
      for (const t of running) {
        finish.get(slotKey(t.id, 1))?.(OK);
        finish.delete(slotKey(t.id, 1));
        done++;
      }
    }
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    // Assert
    expect(most).toBe(2);
    expect(tasks.map((t) => store.tasks.get(t.id)?.status)).toEqual(tasks.map(() => 'succeeded'));
    expect(roleSlots()).toEqual([]);
  });

  it('holds no slot of the role while the task waits for a full provider', async () => {
    // Arrange: ml may run two at once, claude only one
    const { sim, finish, submit, waitersOn, roleSlots } = limited(2, 1);
    const a = admitted('ml');
    const b = admitted('ml');
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    // Act
    await submit(b);
    await until(() => sim.parkedToken(b.id) !== undefined);
    // Assert: B waits for claude, and the role's pool holds A's slot only
    expect(waitersOn('claude')).toEqual([b.id]);
    expect(waitersOn('role:ml')).toEqual([]);
    expect(roleSlots()).toEqual([slotKey(a.id, 1)]);
    finish.get(slotKey(a.id, 1))?.(OK);
    await until(() => finish.has(slotKey(b.id, 1)));
    expect(roleSlots()).toEqual([slotKey(b.id, 1)]);
    finish.get(slotKey(b.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
  });

  it('hands on the provider slot reserved for a woken task whose role is full, and the reaper wakes it when the role frees', async () => {
    // Arrange: ml and claude run one attempt each at once; A (backend) holds claude, B (ml) waits for it
    const { store, pools, sim, finish, submit, waitersOn } = limited(1, 1);
    const ml = sim.deps.roles.ml as NonNullable<typeof sim.deps.roles.ml>;
    const a = admitted('backend');
    const b = admitted('ml');
    await submit(a);
    await until(() => finish.has(slotKey(a.id, 1)));
    await submit(b);
    await until(() => waitersOn('claude').includes(b.id));
    // an attempt of ml elsewhere (its end lost) fills the role meanwhile
    const now = Date.now();
    expect((await admitRoleSlot(pools, ml, 'other#1', now, now + 3_600_000)).ok).toBe(true);
    // Act: A ends; claude's slot is reserved for B, which finds its role full
    finish.get(slotKey(a.id, 1))?.(OK);
    await until(() => waitersOn('role:ml').includes(b.id) && sim.parkedToken(b.id) !== undefined);
    // Assert: B waits on its role, and claude's slot is free for anyone (no reservation left for B)
    expect(waitersOn('claude')).toEqual([]);
    expect(Object.keys(liveReservations(store.providers.get('claude') as never, Date.now()))).toEqual([]);
    const c = admitted('backend');
    await submit(c);
    await until(() => finish.has(slotKey(c.id, 1)));
    // Act: the lost attempt's role slot goes; the reaper's pass over the roles' pools wakes B
    await releaseRoleSlot(pools, ml, 'other#1', Date.now());
    const woken = await wakeAllProviders(
      { health: pools, limits: () => rolePoolLimits(ml), waiters: store, callbacks: sim.callbacks },
      Date.now(),
    );
    expect(woken).toBe(1);
    // B takes the role's slot, finds claude held by C, and waits for claude again
    await until(() => waitersOn('claude').includes(b.id));
    finish.get(slotKey(c.id, 1))?.(OK);
    await until(() => finish.has(slotKey(b.id, 1)));
    finish.get(slotKey(b.id, 1))?.(OK);
    await Promise.all([...sim.executions.values()].map((e) => e.result));
    expect([a, b, c].map((t) => store.tasks.get(t.id)?.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
  });
});

describe('-c roleLimits', () => {
  it('reaches the functions that admit, record and reap attempts as ROLE_LIMITS, and only them', () => {
    // Act
    const { template } = synthStack({ roleLimits: '{"ml": {"maxConcurrent": 2}}' });
    // Assert
    const functions = template.findResources('AWS::Lambda::Function');
    const withLimits = Object.entries(functions)
      .filter(([, f]) => f.Properties.Environment?.Variables?.ROLE_LIMITS !== undefined)
      .map(([id, f]) => [id.replace(/[0-9A-F]{8}$/, ''), f.Properties.Environment.Variables.ROLE_LIMITS]);
    expect(withLimits.map(([id]) => id).sort()).toEqual([
      expect.stringMatching(/^SchedulesReaper/),
      expect.stringMatching(/^WorkflowPrepare/),
      expect.stringMatching(/^WorkflowRecord/),
    ]);
    for (const [, value] of withLimits) expect(JSON.parse(value)).toEqual({ ml: { maxConcurrent: 2 } });
  });

  it('fails the synth naming an unknown role or a bad limit', () => {
    expect(() => synthStack({ roleLimits: '{"nope": {"maxConcurrent": 2}}' })).toThrow(ConfigError);
    expect(() => synthStack({ roleLimits: '{"nope": {"maxConcurrent": 2}}' })).toThrow(
      /no agent role "nope"/,
    );
    expect(() => synthStack({ roleLimits: '{"ml": {"maxConcurrent": 0}}' })).toThrow(/ml\.maxConcurrent/);
  });
});
