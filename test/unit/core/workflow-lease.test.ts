import { describe, expect, it } from '@jest/globals';
import { transition } from '../../../lib/core/lifecycle.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import { reapExpired, renewLease } from '../../../lib/core/workflow.js';
import { makeTask } from '../../support/tasks.js';

const T0 = new Date('2026-12-02T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const attempt = (number: number, outcome: 'running' | 'failed') => ({
  number,
  provider: 'claude',
  startedAt: T0.toISOString(),
  outcome,
});

/** A task running attempt 2 under a lease that ends 1 s after T0. */
const running = () =>
  transition(
    makeTask(),
    'running',
    {
      attempts: [attempt(1, 'failed'), attempt(2, 'running')],
      lease: { owner: 'exec-1', expiresAt: T0.getTime() + 1000 },
    },
    T0,
  );

describe('renewLease (the worker heartbeat)', () => {
  it('moves the lease ahead of now, keeps its owner, and the reaper then leaves the task alone', () => {
    // Act
    const renewed = renewLease(running(), 2, at(900), 5000);
    // Assert
    expect(renewed?.lease).toEqual({ owner: 'exec-1', expiresAt: T0.getTime() + 5900 });
    expect(reapExpired(running(), BUILT_IN_ROLES.backend, at(2000))).toBeDefined();
    expect(
      reapExpired(renewed as NonNullable<typeof renewed>, BUILT_IN_ROLES.backend, at(2000)),
    ).toBeUndefined();
  });

  it('never shortens a lease', () => {
    expect(renewLease(running(), 2, T0, 10)?.lease?.expiresAt).toBe(T0.getTime() + 1000);
  });

  it.each([
    ['an attempt that is not the running one', (t: ReturnType<typeof running>) => t, 1],
    ['a reaped task', (t: ReturnType<typeof running>) => reapExpired(t, BUILT_IN_ROLES.backend, at(2000)), 2],
    ['a task without a lease', (t: ReturnType<typeof running>) => ({ ...t, lease: undefined }), 2],
  ])('refuses %s (the worker lost it)', (_name, change, number) => {
    const task = change(running());
    expect(task && renewLease(task, number, at(100), 5000)).toBeUndefined();
  });
});
