import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { VersionConflictError } from '../../../lib/core/errors.js';
import { transition } from '../../../lib/core/lifecycle.js';
import {
  type BreakerMode,
  initialProviderState,
  type ProviderState,
} from '../../../lib/core/provider-health.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import {
  admittedRouting,
  cachedFigures,
  DEFAULT_ROUTING_POLICY,
  parseExploration,
  type RouteFigures,
  route,
  routingCandidates,
  seededRandom,
} from '../../../lib/core/routing.js';
import type { Task } from '../../../lib/core/schemas.js';
import { prepareNext } from '../../../lib/core/workflow-engine.js';
import { makeTask } from '../../support/tasks.js';

const CANDIDATES = ['claude', 'codex', 'gemini'];
const NO_EXPLORATION = { ...DEFAULT_ROUTING_POLICY, exploration: 0 };

function figures(
  provider: string,
  succeeded: number,
  failed: number,
  medianMs = 60_000,
  medianCostUsd = 0.1,
) {
  return {
    provider,
    succeeded,
    failed,
    medianMs: succeeded > 0 ? medianMs : null,
    medianCostUsd: succeeded > 0 ? medianCostUsd : null,
  };
}

const never = () => {
  throw new Error('no draw expected');
};

describe('routing: scores from recorded outcomes', () => {
  it("takes the role's first provider while nothing is recorded, and says so", () => {
    // Act
    const r = route({
      candidates: CANDIDATES,
      figures: [],
      breakers: {},
      policy: NO_EXPLORATION,
      random: never,
    });
    // Assert
    expect(r.order).toEqual(CANDIDATES);
    expect(r.routing).toMatchObject({ choice: 'claude', explored: false });
    expect(r.routing.reason).toMatch(
      /no outcomes recorded for this role yet: claude, first in the role's order/,
    );
    expect(r.routing.scores).toEqual({ claude: 0.5, codex: 0.5, gemini: 0.5 });
  });

  it('prefers the provider that succeeds over the one that fails, with the figures in the reason', () => {
    const r = route({
      candidates: CANDIDATES,
      figures: [figures('claude', 0, 6), figures('codex', 6, 0, 42_000, 0.12)],
      breakers: {},
      policy: NO_EXPLORATION,
      random: () => 0.99,
    });
    expect(r.routing.choice).toBe('codex');
    expect(r.order).toEqual(['codex', 'gemini', 'claude']);
    expect(r.routing.reason).toBe(
      'best score 0.875: 6/6 succeeded, median 42.0 s, median $0.1200; next gemini 0.5 (no outcomes yet)',
    );
    expect(r.routing.scores.claude).toBeCloseTo(0.125);
  });

  it('lets duration and cost decide between equally successful providers', () => {
    const r = route({
      candidates: ['claude', 'codex'],
      figures: [figures('claude', 8, 2, 120_000, 0.4), figures('codex', 8, 2, 60_000, 0.2)],
      breakers: {},
      policy: NO_EXPLORATION,
      random: never,
    });
    expect(r.routing.choice).toBe('codex');
    // twice as slow and twice as dear: half of each weight off
    expect((r.routing.scores.codex ?? 0) - (r.routing.scores.claude ?? 0)).toBeCloseTo(0.15, 2);
  });

  it('never chooses an open breaker while another is not, and names it; half-open loses points', () => {
    const r = route({
      candidates: CANDIDATES,
      figures: [figures('claude', 9, 0), figures('codex', 5, 5), figures('gemini', 6, 4)],
      breakers: { claude: 'open', gemini: 'half_open' },
      policy: NO_EXPLORATION,
      random: never,
    });
    expect(r.routing.choice).toBe('codex');
    expect(r.routing.scores.claude).toBeNull();
    expect(r.order.at(-1)).toBe('claude');
    expect(r.routing.reason).toMatch(/circuit breaker open: claude$/);
  });

  it("puts the role's first provider first when every breaker is open (admission then waits for it)", () => {
    const r = route({
      candidates: CANDIDATES,
      figures: [figures('codex', 9, 0)],
      breakers: { claude: 'open', codex: 'open', gemini: 'open' },
      policy: { ...DEFAULT_ROUTING_POLICY, exploration: 1 },
      random: never,
    });
    expect(r.order).toEqual(CANDIDATES);
    expect(r.routing.reason).toMatch(/every candidate's circuit breaker is open/);
  });
});

const modes: BreakerMode[] = ['closed', 'open', 'half_open'];
const arbFigures = fc.record({
  succeeded: fc.nat(50),
  failed: fc.nat(50),
  medianMs: fc.option(fc.integer({ min: 1, max: 3_600_000 })),
  medianCostUsd: fc.option(fc.double({ min: 0, max: 10, noNaN: true })),
});
const arbCase = fc.record({
  figures: fc.tuple(arbFigures, arbFigures, arbFigures),
  breakers: fc.tuple(...CANDIDATES.map(() => fc.constantFrom(...modes))),
  exploration: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.integer(),
});

describe('routing: properties', () => {
  it('never chooses an open breaker unless every candidate has one; the order holds every candidate once', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const figs: RouteFigures[] = c.figures.map((f, i) => ({ ...f, provider: CANDIDATES[i] as string }));
        const breakers = Object.fromEntries(CANDIDATES.map((p, i) => [p, c.breakers[i] as BreakerMode]));
        const policy = { ...DEFAULT_ROUTING_POLICY, exploration: c.exploration };
        const r = route({
          candidates: CANDIDATES,
          figures: figs,
          breakers,
          policy,
          random: seededRandom(c.seed),
        });
        expect([...r.order].sort()).toEqual([...CANDIDATES].sort());
        expect(r.order[0]).toBe(r.routing.choice);
        const allOpen = CANDIDATES.every((p) => breakers[p] === 'open');
        if (!allOpen) expect(breakers[r.routing.choice]).not.toBe('open');
        // without exploration the choice has the best score
        if (!r.routing.explored && !allOpen) {
          const best = Math.max(...Object.values(r.routing.scores).map((s) => s ?? -1));
          expect(r.routing.scores[r.routing.choice]).toBe(best);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('explores in the configured share of choices, and never with a share of 0', () => {
    // Arrange: one clear best of three eligible providers
    const figs = [figures('claude', 20, 0), figures('codex', 10, 10), figures('gemini', 2, 18)];
    for (const exploration of [0, 0.1, 0.3]) {
      const random = seededRandom(42);
      const chosen = new Map<string, number>();
      const draws = 10_000;
      let mislabelled = 0;
      // Act
      for (let i = 0; i < draws; i++) {
        const r = route({
          candidates: CANDIDATES,
          figures: figs,
          breakers: {},
          policy: { ...DEFAULT_ROUTING_POLICY, exploration },
          random,
        });
        if (r.routing.explored !== (r.routing.choice !== 'claude')) mislabelled++;
        chosen.set(r.routing.choice, (chosen.get(r.routing.choice) ?? 0) + 1);
      }
      // Assert: the share within 1.5 points; exploration spread over the others alike
      expect(mislabelled).toBe(0);
      const explored = draws - (chosen.get('claude') ?? 0);
      expect(Math.abs(explored / draws - exploration)).toBeLessThan(0.015);
      if (exploration > 0) {
        expect(Math.abs((chosen.get('codex') ?? 0) - (chosen.get('gemini') ?? 0)) / explored).toBeLessThan(
          0.1,
        );
      }
    }
  });

  it('is the same sequence of choices for the same seed', () => {
    const run = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from(
        { length: 200 },
        () =>
          route({
            candidates: CANDIDATES,
            figures: [figures('claude', 5, 5)],
            breakers: {},
            policy: { ...DEFAULT_ROUTING_POLICY, exploration: 0.5 },
            random,
          }).routing.choice,
      );
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });
});

describe('routing: candidates, admission, settings, figures cache', () => {
  it('leaves out providers that failed this run for a reason of their own, unless none would be left', () => {
    const failed = (provider: string, errorClass: string) => ({ provider, outcome: 'failed', errorClass });
    expect(routingCandidates(CANDIDATES, [failed('claude', 'rate_limit'), failed('codex', 'crash')])).toEqual(
      ['codex', 'gemini'],
    );
    expect(routingCandidates(['claude'], [failed('claude', 'auth')])).toEqual(['claude']);
  });

  it("records the admitted provider and why when routing's first choice did not admit", () => {
    const r = route({
      candidates: ['claude', 'codex'],
      figures: [figures('claude', 9, 1)],
      breakers: {},
      policy: NO_EXPLORATION,
      random: never,
    });
    const admitted = admittedRouting(r.routing, 'codex', ['claude (rate limit, 3 s)']);
    expect(admitted.choice).toBe('codex');
    expect(admitted.reason).toMatch(
      /^codex \(score 0\.5\) as claude \(rate limit, 3 s\); routing had said: best score/,
    );
    expect(admittedRouting(r.routing, 'claude', [])).toBe(r.routing);
  });

  it('reads the exploration share from 0 to 1 and names the setting otherwise', () => {
    expect(parseExploration(undefined, 'ROUTING_EXPLORATION')).toBe(0.1);
    expect(parseExploration('0.25', 'ROUTING_EXPLORATION')).toBe(0.25);
    expect(() => parseExploration('1.5', 'ROUTING_EXPLORATION')).toThrow(
      /ROUTING_EXPLORATION must be a number from 0 to 1/,
    );
    expect(() => parseExploration('lots', 'ROUTING_EXPLORATION')).toThrow(/ROUTING_EXPLORATION/);
  });

  it("reads a tenant's figures for a role once per period", async () => {
    let reads = 0;
    const source = cachedFigures(async () => {
      reads++;
      return [];
    }, 1000);
    const t0 = new Date(0);
    await source('acme', 'backend', t0);
    await source('acme', 'backend', new Date(999));
    await source('acme', 'docs', new Date(999));
    await source('globex', 'backend', new Date(999));
    expect(reads).toBe(3);
    await source('acme', 'backend', new Date(1000));
    expect(reads).toBe(4);
  });
});

/** A store with conditional writes, and provider state (the breakers routing reads). */
class MemoryStore {
  readonly tasks = new Map<string, Task>();
  readonly states = new Map<string, ProviderState>();
  async getById(id: string) {
    return structuredClone(this.tasks.get(id));
  }
  async put(task: Task, expected: number) {
    if (this.tasks.get(task.id)?.version !== expected) throw new VersionConflictError('moved');
    this.tasks.set(task.id, structuredClone(task));
  }
  async getProviderState(p: string) {
    return this.states.get(p);
  }
  async putProviderState(s: ProviderState) {
    this.states.set(s.provider, s);
  }
  async listProviderStates() {
    return [...this.states.values()];
  }
}

describe('the prepare step routes "auto" tasks (both engines run it)', () => {
  const T0 = new Date('2026-12-02T10:00:00Z');
  const claimed = (overrides: Partial<Task>) =>
    transition(
      makeTask(overrides),
      'running',
      { lease: { owner: 'exec-1', expiresAt: T0.getTime() + 1000 } },
      T0,
    );

  it('runs the attempt on the routed provider and records the choice, its reason and the scores', async () => {
    // Arrange: claude fails for this tenant and role, codex succeeds; gemini is not available
    const store = new MemoryStore();
    const task = claimed({ requestedProvider: 'auto' });
    store.tasks.set(task.id, task);
    const asked: string[] = [];
    const deps = {
      store,
      roles: BUILT_IN_ROLES,
      available: (p: string) => p !== 'gemini',
      health: { store },
      routing: {
        figures: async (tenant: string, role: string) => {
          asked.push(`${tenant}/${role}`);
          return [figures('claude', 0, 4), figures('codex', 4, 0)];
        },
        policy: NO_EXPLORATION,
      },
    };
    // Act
    const out = await prepareNext(deps, { taskId: task.id, leaseOwner: 'exec-1', now: T0 });
    // Assert
    expect(asked).toEqual(['acme/backend']);
    expect(out).toMatchObject({ action: 'run', plan: { provider: 'codex' }, routing: { choice: 'codex' } });
    const attempt = store.tasks.get(task.id)?.attempts[0];
    expect(attempt?.provider).toBe('codex');
    expect(attempt?.routing).toMatchObject({
      choice: 'codex',
      explored: false,
      reason: expect.stringMatching(/^best score/),
    });
    expect(Object.keys(attempt?.routing?.scores ?? {})).toEqual([
      'claude',
      'codex',
      'cursor',
      'opencode',
      'aider',
    ]);
  });

  it('skips a provider whose breaker is open, as read from provider health', async () => {
    const store = new MemoryStore();
    const task = claimed({ requestedProvider: 'auto' });
    store.tasks.set(task.id, task);
    const open = initialProviderState('codex', { ratePerSecond: 1, burst: 10 }, T0.getTime());
    store.states.set('codex', { ...open, breaker: { mode: 'open', failures: [], openedAt: T0.getTime() } });
    const deps = {
      store,
      roles: BUILT_IN_ROLES,
      available: (p: string) => p === 'claude' || p === 'codex',
      health: { store },
      routing: {
        figures: async () => [figures('claude', 1, 3), figures('codex', 9, 0)],
        policy: NO_EXPLORATION,
      },
    };
    const out = await prepareNext(deps, { taskId: task.id, leaseOwner: 'exec-1', now: T0 });
    expect(out).toMatchObject({ action: 'run', plan: { provider: 'claude' } });
    expect(store.tasks.get(task.id)?.attempts[0]?.routing?.scores.codex).toBeNull();
  });

  it('keeps a pinned task on its provider while its breaker is open: it waits, no failover', async () => {
    const store = new MemoryStore();
    const task = claimed({ requestedProvider: 'codex', pin: true });
    store.tasks.set(task.id, task);
    const open = initialProviderState('codex', { ratePerSecond: 1, burst: 10 }, T0.getTime());
    store.states.set('codex', { ...open, breaker: { mode: 'open', failures: [], openedAt: T0.getTime() } });
    const deps = { store, roles: BUILT_IN_ROLES, available: () => true, health: { store } };
    const out = await prepareNext(deps, { taskId: task.id, leaseOwner: 'exec-1', now: T0 });
    expect(out).toMatchObject({
      action: 'wait',
      reason: expect.stringMatching(/codex \(circuit breaker open/),
    });
    expect(store.tasks.get(task.id)).toMatchObject({ status: 'retrying', attempts: [] });
    // the same task unpinned prefers codex and moves on to claude
    const preferred = claimed({ requestedProvider: 'codex' });
    store.tasks.set(preferred.id, preferred);
    const moved = await prepareNext(deps, { taskId: preferred.id, leaseOwner: 'exec-1', now: T0 });
    expect(moved).toMatchObject({ action: 'run', plan: { provider: 'claude' } });
  });

  it('keeps a preferred provider while it is only busy: the task waits for a place, it does not move', async () => {
    const store = new MemoryStore();
    const task = claimed({ requestedProvider: 'codex' });
    store.tasks.set(task.id, task);
    const deps = { store, roles: BUILT_IN_ROLES, available: () => true, health: { store } };
    const slots = {
      full: (p: string) => (p === 'codex' ? 'at its limit of 1 at once' : undefined),
      take: () => {},
    };
    const out = await prepareNext(deps, { taskId: task.id, leaseOwner: 'exec-1', now: T0, slots });
    expect(out).toMatchObject({ action: 'wait', reason: expect.stringMatching(/codex \(at its limit/) });
    expect(store.tasks.get(task.id)?.attempts).toEqual([]);
  });
});
