import {
  EQUAL_SHARES,
  type FairCandidate,
  type FairSharePolicy,
  INITIAL_FAIR_SHARE_STATE,
  PRIORITY_RANK,
  pickOrder,
  recordStart,
} from './fair-share.js';
import type { ProviderState } from './provider-health.js';
import {
  freeSlots,
  liveReservations,
  liveSlots,
  type ProviderLimits,
  RESERVATION_MS,
} from './provider-slots.js';
import type { Priority, Task } from './schemas.js';

/**
 * Handing freed slots to parked tasks, for the distributed executor: a task whose providers were
 * full waits (its workflow execution parked) under each of them. When a slot frees, the waker
 * picks the next parked tasks in fair order (fair-share.ts: tenants by turn, priority with aging
 * within a tenant) and reserves a slot for each in the same write that freed it, before it wakes
 * them. A reserved slot counts as taken (`freeSlots`), so a task arriving meanwhile parks instead
 * of taking it, and the woken task finds its slot when it prepares again (`admitSlot`). A
 * reservation its task never comes for lapses after RESERVATION_MS.
 */

/** A parked task as its waiter records it (`id` is the task's id). */
export type ParkedTask = FairCandidate & { tenant: string };

const RANK_PRIORITY: readonly Priority[] = ['high', 'normal', 'low'];

/** The order of a tenant's parked tasks: higher priority first, then older tasks first. */
export function waiterKey(task: Pick<Task, 'id' | 'priority' | 'createdAt'>): string {
  const created = String(Date.parse(task.createdAt)).padStart(15, '0');
  return `${PRIORITY_RANK[task.priority] ?? 1}#${created}#${task.id}`;
}

/** The parked task a waiter key (`waiterKey`) of `tenant` stands for; undefined for a key of another form. */
export function parkedTaskOf(key: string, tenant: string): ParkedTask | undefined {
  const m = key.match(/^([0-2])#(\d{15})#(.+)$/);
  if (!m) return undefined;
  return {
    id: m[3] as string,
    tenant,
    priority: RANK_PRIORITY[Number(m[1])] as Priority,
    createdAt: new Date(Number(m[2])).toISOString(),
  };
}

/** Whether the task already holds a slot or a reservation on this provider. */
function holds(s: ProviderState, taskId: string, now: number): boolean {
  if (liveReservations(s, now)[taskId] !== undefined) return true;
  return Object.keys(liveSlots(s, now)).some((key) => key.startsWith(`${taskId}#`));
}

/**
 * Which of `parked` take the provider's free slots, in fair order, and the state with a slot
 * reserved for each (and the tenants' turns taken). `parked` must hold, for each of the tenants
 * whose turn comes first, its most urgent tasks (as many as there are free slots).
 */
export function handOffSlots<T extends ParkedTask>(
  s: ProviderState,
  parked: readonly T[],
  now: number,
  limits: ProviderLimits,
  policy: FairSharePolicy = EQUAL_SHARES,
): { next: ProviderState; chosen: T[] } {
  const free = freeSlots(s, now, limits);
  let ready = parked.filter((p) => !holds(s, p.id, now));
  let fair = s.fair ?? INITIAL_FAIR_SHARE_STATE;
  const chosen: T[] = [];
  while (chosen.length < free) {
    const [next] = pickOrder({ ready, running: [], roleLimits: {}, policy, state: fair, now });
    if (!next) break;
    chosen.push(next);
    fair = recordStart(fair, next.tenant, policy);
    ready = ready.filter((p) => p !== next);
  }
  if (chosen.length === 0) return { next: s, chosen };
  const reserved = liveReservations(s, now);
  for (const c of chosen) reserved[c.id] = now + RESERVATION_MS;
  return { next: { ...s, reserved, fair, version: s.version + 1 }, chosen };
}

/** The state after the reservations of `taskIds` were given back (their tasks were not woken). */
export function unreserve(s: ProviderState, taskIds: readonly string[], now: number): ProviderState {
  const reserved = liveReservations(s, now);
  if (!taskIds.some((id) => reserved[id] !== undefined)) return s;
  for (const id of taskIds) delete reserved[id];
  return { ...s, reserved, version: s.version + 1 };
}
