import { describe, expect, it } from '@jest/globals';
import { initialProviderState, type ProviderState } from '../../../lib/core/provider-health.js';
import { admitSlot, freeSlots, RESERVATION_MS, releaseSlot } from '../../../lib/core/provider-slots.js';
import {
  handOffSlots,
  type ParkedTask,
  parkedTaskOf,
  unreserve,
  waiterKey,
} from '../../../lib/core/slot-handoff.js';

const NOW = Date.parse('2026-12-02T10:00:00Z');
const limits = { ratePerSecond: 100, burst: 100, concurrency: 2 };

/** A provider whose `concurrency` slots are held by tasks of `tenant`, admitted directly. */
function fullOf(tenant: string, n = limits.concurrency): ProviderState {
  let s = initialProviderState('claude', limits, NOW);
  for (let i = 0; i < n; i++)
    s = admitSlot(
      s,
      `${tenant}-run${i}#1`,
      NOW,
      NOW + 3_600_000,
      { ...limits, concurrency: n },
      undefined,
      tenant,
    ).next;
  return s;
}

function parked(tenant: string, i: number, priority: ParkedTask['priority'] = 'normal'): ParkedTask {
  return { id: `${tenant}-t${i}`, tenant, priority, createdAt: new Date(NOW - 60_000 + i).toISOString() };
}

describe('handing a freed slot to a parked task', () => {
  it('reserves the freed slot for the woken task: a task arriving meanwhile finds the provider full', () => {
    // Arrange: both slots held; one frees
    const freed = releaseSlot(fullOf('acme'), 'acme-run0#1', NOW);
    // Act
    const { next, chosen } = handOffSlots(freed, [parked('acme', 1)], NOW, limits);
    // Assert
    expect(chosen.map((c) => c.id)).toEqual(['acme-t1']);
    expect(freeSlots(next, NOW, limits)).toBe(0);
    expect(admitSlot(next, 'newcomer#1', NOW + 10, NOW + 3_600_000, limits).admission).toEqual({
      ok: false,
      reason: 'full',
    });
    const woken = admitSlot(next, 'acme-t1#1', NOW + 10, NOW + 3_600_000, limits);
    expect(woken.admission.ok).toBe(true);
    expect(woken.next.reserved).toEqual({});
  });

  it('lets a reservation its task never takes lapse, and gives one back at once on request (no slot leaks)', () => {
    const freed = releaseSlot(fullOf('acme'), 'acme-run0#1', NOW);
    const { next } = handOffSlots(freed, [parked('acme', 1)], NOW, limits);
    expect(freeSlots(next, NOW + RESERVATION_MS - 1, limits)).toBe(0);
    expect(freeSlots(next, NOW + RESERVATION_MS, limits)).toBe(1);
    expect(admitSlot(next, 'newcomer#1', NOW + RESERVATION_MS, NOW + 3_600_000, limits).admission.ok).toBe(
      true,
    );
    expect(freeSlots(unreserve(next, ['acme-t1'], NOW), NOW, limits)).toBe(1);
  });

  it('reserves no second slot for a task that already holds one or a reservation', () => {
    const freed = releaseSlot(fullOf('acme'), 'acme-run0#1', NOW);
    const first = handOffSlots(freed, [parked('acme', 1)], NOW, { ...limits, concurrency: 3 });
    const again = handOffSlots(first.next, [parked('acme', 1)], NOW, { ...limits, concurrency: 3 });
    expect(again.chosen).toEqual([]);
    expect(again.next).toBe(first.next);
  });

  it('gives the first freed slot to a tenant with one parked task over one with 500 (its burst filled the slots)', () => {
    // Arrange: tenant a's burst took every slot and parked 500 more; then b parks one
    const freed = releaseSlot(fullOf('a', 50), 'a-run0#1', NOW);
    const waiting = [...Array.from({ length: 500 }, (_, i) => parked('a', i)), parked('b', 0)];
    // Act
    const { chosen } = handOffSlots(freed, waiting, NOW, { ...limits, concurrency: 50 });
    // Assert
    expect(chosen.map((c) => c.id)).toEqual(['b-t0']);
  });

  it('alternates tenants slot by slot, priority order within a tenant', () => {
    let s = fullOf('a');
    const waiting = [parked('a', 1), parked('a', 2, 'high'), parked('b', 1), parked('b', 2)];
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      s = releaseSlot(s, Object.keys(s.slots ?? {})[0] as string, NOW);
      const r = handOffSlots(
        s,
        waiting.filter((w) => !order.includes(w.id)),
        NOW,
        limits,
      );
      order.push(...r.chosen.map((c) => c.id));
      // the woken task takes its slot
      s = admitSlot(r.next, `${r.chosen[0]?.id}#1`, NOW, NOW + 3_600_000, limits).next;
    }
    expect(order).toEqual(['b-t1', 'a-t2', 'b-t2', 'a-t1']);
  });

  it('keeps aging: a low task parked long enough goes before a newer normal one of its tenant', () => {
    const freed = releaseSlot(fullOf('a'), 'a-run0#1', NOW);
    const old: ParkedTask = {
      id: 'a-low',
      tenant: 'a',
      priority: 'low',
      createdAt: new Date(NOW - 1_300_000).toISOString(),
    };
    const { chosen } = handOffSlots(freed, [parked('a', 1), old], NOW, limits);
    expect(chosen.map((c) => c.id)).toEqual(['a-low']);
  });

  it('reads a waiter key back as the parked task it was made from', () => {
    const task = { id: 'tsk_01', priority: 'low' as const, createdAt: '2026-12-02T09:59:00.000Z' };
    expect(parkedTaskOf(waiterKey(task), 'acme')).toEqual({ ...task, tenant: 'acme' });
    expect(parkedTaskOf('not-a-key', 'acme')).toBeUndefined();
  });
});
