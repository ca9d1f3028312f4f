import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ConfigError } from '../../../lib/core/errors.js';
import {
  effectiveRank,
  type FairSharePolicy,
  type FairShareState,
  INITIAL_FAIR_SHARE_STATE,
  PRIORITY_RANK,
  parseFairShares,
  pickOrder,
  recordStart,
} from '../../../lib/core/fair-share.js';
import type { Priority, Task } from '../../../lib/core/schemas.js';
import { makeTask } from '../../support/tasks.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const MINUTE = 60_000;
const equal: FairSharePolicy = { weights: {}, agingMs: 10 * MINUTE };

let serial = 0;
/** A queued task created at `at` (ms); ids sort by creation like real ones. */
function task(tenant: string, at: number, priority: Priority = 'normal', role = 'backend'): Task {
  serial++;
  return makeTask({
    id: `t${String(at).padStart(14, '0')}${String(serial).padStart(6, '0')}`,
    tenant,
    priority,
    role,
    createdAt: new Date(at).toISOString(),
  });
}

/** A scheduler over in-memory queues: each step starts the first task of pickOrder (instant completion). */
class Sim {
  state: FairShareState = INITIAL_FAIR_SHARE_STATE;
  queued: Task[] = [];
  started: Task[] = [];
  running: Task[] = [];
  constructor(
    readonly policy: FairSharePolicy = equal,
    readonly roleLimits: Record<string, number | undefined> = {},
  ) {}
  submit(...tasks: Task[]) {
    this.queued.push(...tasks);
  }
  step(now: number, keepRunning = false): Task | undefined {
    const [next] = pickOrder({
      ready: this.queued,
      running: this.running,
      roleLimits: this.roleLimits,
      policy: this.policy,
      state: this.state,
      now,
    });
    if (!next) return undefined;
    this.queued = this.queued.filter((t) => t !== next);
    this.started.push(next);
    if (keepRunning) this.running.push(next);
    this.state = recordStart(this.state, next.tenant, this.policy);
    return next;
  }
}

const tenantName = fc.constantFrom('acme', 'globex', 'initech', 'umbrella', 'hooli');
const priority = fc.constantFrom<Priority>('high', 'normal', 'low');
const arbTask = fc
  .record({
    tenant: tenantName,
    minute: fc.integer({ min: 0, max: 120 }),
    priority,
    role: fc.constantFrom('backend', 'frontend', 'docs'),
  })
  .map((r) => task(r.tenant, T0 + r.minute * MINUTE, r.priority, r.role));

describe('fair shares: the order within a tenant', () => {
  it('starts high before normal before low, the oldest first within a priority', () => {
    // Arrange
    const sim = new Sim();
    const low = task('acme', T0, 'low');
    const normal1 = task('acme', T0 + 1, 'normal');
    const high = task('acme', T0 + 2, 'high');
    const normal2 = task('acme', T0 + 3, 'normal');
    sim.submit(low, normal1, high, normal2);
    // Act
    for (let i = 0; i < 4; i++) sim.step(T0 + 4);
    // Assert
    expect(sim.started.map((t) => t.id)).toEqual([high.id, normal1.id, normal2.id, low.id]);
  });

  it('ages a waiting task one priority level per aging step, counted from its creation', () => {
    const low = task('acme', T0, 'low');
    expect(effectiveRank(low, T0 + 10 * MINUTE - 1, 10 * MINUTE)).toBe(PRIORITY_RANK.low);
    expect(effectiveRank(low, T0 + 10 * MINUTE, 10 * MINUTE)).toBe(PRIORITY_RANK.normal);
    expect(effectiveRank(low, T0 + 20 * MINUTE, 10 * MINUTE)).toBe(PRIORITY_RANK.high);
    expect(effectiveRank(low, T0 + 500 * MINUTE, 10 * MINUTE)).toBe(PRIORITY_RANK.high);
  });

  it('starts a low task after twice the aging step while high tasks keep arriving faster than they start', () => {
    // Arrange: one start a minute, two high tasks arriving a minute, one low task waiting from the start
    const sim = new Sim();
    const low = task('acme', T0, 'low');
    sim.submit(low);
    let startedLowAt: number | undefined;
    // Act
    for (let minute = 0; minute < 60 && startedLowAt === undefined; minute++) {
      const now = T0 + minute * MINUTE;
      sim.submit(task('acme', now + 1, 'high'), task('acme', now + 2, 'high'));
      if (sim.step(now + 3) === low) startedLowAt = now;
    }
    // Assert: high from 20 minutes on, and the oldest of its tenant's high tasks by then
    expect(startedLowAt).toBe(T0 + 20 * MINUTE);
    expect(sim.queued.length).toBeGreaterThan(15);
  });

  it('never starts a low task while it waits less than the aging step behind normal ones', () => {
    const sim = new Sim();
    const low = task('acme', T0, 'low');
    sim.submit(low);
    for (let minute = 0; minute < 9; minute++) {
      sim.submit(task('acme', T0 + minute * MINUTE + 1, 'normal'));
      expect(sim.step(T0 + minute * MINUTE + 2)).not.toBe(low);
    }
  });
});

describe('fair shares: between tenants', () => {
  it('starts the one task of a tenant that arrives behind another tenant’s 500 next', () => {
    // Arrange
    const sim = new Sim();
    for (let i = 0; i < 500; i++) sim.submit(task('acme', T0 + i));
    for (let i = 0; i < 37; i++) sim.step(T0 + 1000);
    // Act
    const single = task('globex', T0 + 1001);
    sim.submit(single);
    // Assert
    expect(sim.step(T0 + 1002)).toBe(single);
  });

  it('ignores priority across tenants: one tenant’s high tasks do not jump another tenant’s queue', () => {
    const sim = new Sim();
    for (let i = 0; i < 10; i++) sim.submit(task('acme', T0 + i, 'high'), task('globex', T0 + i, 'low'));
    for (let i = 0; i < 10; i++) sim.step(T0 + 100);
    expect(sim.started.filter((t) => t.tenant === 'globex')).toHaveLength(5);
  });

  it('gives backlogged tenants starts in proportion to their weights', () => {
    // Arrange
    const sim = new Sim({ weights: { acme: 3, '*': 1 }, agingMs: MINUTE });
    for (let i = 0; i < 100; i++) sim.submit(task('acme', T0 + i), task('globex', T0 + i));
    // Act
    for (let i = 0; i < 80; i++) sim.step(T0 + 200);
    // Assert
    expect(sim.started.filter((t) => t.tenant === 'acme')).toHaveLength(60);
  });

  it('skips a role at its limit and starts the tenant’s next task of another role', () => {
    // Arrange
    const sim = new Sim(equal, { backend: 1 });
    const b1 = task('acme', T0, 'high', 'backend');
    const b2 = task('acme', T0 + 1, 'high', 'backend');
    const docs = task('acme', T0 + 2, 'low', 'docs');
    sim.submit(b1, b2, docs);
    // Act
    const first = sim.step(T0 + 3, true);
    const second = sim.step(T0 + 3, true);
    const third = sim.step(T0 + 3, true);
    // Assert
    expect([first, second, third]).toEqual([b1, docs, undefined]);
  });
});

describe('fair shares: properties', () => {
  it('offers at most one task per tenant, each the most urgent of its tenant that its role admits', () => {
    fc.assert(
      fc.property(
        fc.array(arbTask, { minLength: 0, maxLength: 60 }),
        fc.array(arbTask, { maxLength: 6 }),
        fc.record({ backend: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }) }),
        fc.integer({ min: 0, max: 300 }),
        (ready, running, roleLimits, minute) => {
          const now = T0 + minute * MINUTE;
          const order = pickOrder({
            ready,
            running,
            roleLimits,
            policy: equal,
            state: INITIAL_FAIR_SHARE_STATE,
            now,
          });
          const runningBackend = running.filter((t) => t.role === 'backend').length;
          const admitted = (t: Task) =>
            t.role !== 'backend' || roleLimits.backend === undefined || runningBackend < roleLimits.backend;
          expect(new Set(order.map((t) => t.tenant)).size).toBe(order.length);
          expect(new Set(order.map((t) => t.tenant))).toEqual(
            new Set(ready.filter(admitted).map((t) => t.tenant)),
          );
          for (const chosen of order) {
            expect(admitted(chosen)).toBe(true);
            for (const other of ready.filter((t) => t.tenant === chosen.tenant && admitted(t))) {
              const [a, b] = [
                effectiveRank(chosen, now, equal.agingMs),
                effectiveRank(other, now, equal.agingMs),
              ];
              expect(a < b || (a === b && chosen.createdAt <= other.createdAt)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('lets a tenant that comes back wait for at most one start of each other waiting tenant, whatever came before', () => {
    fc.assert(
      fc.property(
        fc.array(arbTask, { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 0, max: 80 }),
        tenantName,
        (backlog, steps, newcomer) => {
          // Arrange: any backlog, partly started; then a tenant with nothing queued submits one task
          const sim = new Sim();
          sim.submit(...backlog);
          for (let i = 0; i < steps; i++) sim.step(T0 + 200 * MINUTE);
          sim.queued = sim.queued.filter((t) => t.tenant !== newcomer);
          const single = task(newcomer, T0 + 200 * MINUTE);
          sim.submit(single);
          const waiting = new Set(sim.queued.map((t) => t.tenant)).size;
          // Act
          const next: (Task | undefined)[] = [];
          for (let i = 0; i < waiting; i++) next.push(sim.step(T0 + 200 * MINUTE));
          // Assert
          const before = next.slice(0, next.indexOf(single));
          expect(next).toContain(single);
          expect(new Set(before.map((t) => t?.tenant)).size).toBe(before.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps backlogged tenants’ starts per weight within one stride of each other', () => {
    fc.assert(
      fc.property(
        fc.dictionary(tenantName, fc.integer({ min: 1, max: 5 }), { minKeys: 1 }),
        fc.integer({ min: 1, max: 200 }),
        (weights, steps) => {
          // Arrange: every tenant always has tasks queued
          const sim = new Sim({ weights, agingMs: MINUTE });
          const topUp = (at: number) => {
            for (const tenant of Object.keys(weights)) {
              if (!sim.queued.some((t) => t.tenant === tenant)) sim.submit(task(tenant, at));
            }
          };
          // Act
          for (let i = 0; i < steps; i++) {
            topUp(T0 + i);
            sim.step(T0 + i);
          }
          // Assert
          const perWeight = (tenant: string) =>
            sim.started.filter((t) => t.tenant === tenant).length / (weights[tenant] as number);
          for (const [a, wa] of Object.entries(weights)) {
            for (const [b, wb] of Object.entries(weights)) {
              expect(Math.abs(perWeight(a) - perWeight(b))).toBeLessThanOrEqual(
                Math.max(1 / wa, 1 / wb) + 1e-9,
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('starts every low task eventually while new tasks keep arriving (one start per arrival)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ tenant: tenantName, priority }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        (arrivals, agingMinutes) => {
          // Arrange: a low task first, then a stream cycling through `arrivals`, one a minute
          const policy = { weights: {}, agingMs: agingMinutes * MINUTE };
          const sim = new Sim(policy);
          const low = task('acme', T0, 'low');
          sim.submit(low);
          // Act
          let minute = 0;
          for (; minute < 400 && !sim.started.includes(low); minute++) {
            const a = arrivals[minute % arrivals.length] as { tenant: string; priority: Priority };
            sim.submit(task(a.tenant, T0 + minute * MINUTE + 1, a.priority));
            sim.step(T0 + minute * MINUTE + 2);
          }
          // Assert: within twice the aging step plus the tasks of its tenant that were older and high by then
          expect(sim.started).toContain(low);
          expect(minute).toBeLessThanOrEqual(2 * agingMinutes + 6);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('AUTODEV_FAIR_SHARES', () => {
  it('reads weights by tenant and refuses what is not one', () => {
    expect(parseFairShares('')).toEqual({});
    expect(parseFairShares('{"acme": 3, "*": 1}')).toEqual({ acme: 3, '*': 1 });
    expect(() => parseFairShares('{"acme": 0}')).toThrow(ConfigError);
    expect(() => parseFairShares('{"Bad Name": 1}')).toThrow(/AUTODEV_FAIR_SHARES/);
    expect(() => parseFairShares('[1')).toThrow(/not valid JSON/);
  });
});
