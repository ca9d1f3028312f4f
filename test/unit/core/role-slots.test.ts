import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../../lib/core/errors.js';
import {
  admitRoleSlot,
  releaseRoleSlot,
  roleOfQueue,
  rolePoolLimits,
  roleQueue,
  withRoleLimits,
} from '../../../lib/core/role-slots.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import { SimStore } from '../../support/workflow-sim.js';

const ml = { ...(BUILT_IN_ROLES.ml as NonNullable<typeof BUILT_IN_ROLES.ml>), maxConcurrent: 2 };
const HOUR = 3_600_000;

describe('role slot pools (maxConcurrent on the distributed executor)', () => {
  it('admits maxConcurrent attempts of the role at once, the same attempt once, and another after a release', async () => {
    // Arrange
    const pools = new SimStore();
    const now = Date.now();
    // Act / Assert
    expect(await admitRoleSlot(pools, ml, 'a#1', now, now + HOUR)).toEqual({ ok: true });
    expect(await admitRoleSlot(pools, ml, 'b#1', now, now + HOUR)).toEqual({ ok: true });
    expect(await admitRoleSlot(pools, ml, 'a#1', now, now + HOUR)).toEqual({ ok: true });
    expect(await admitRoleSlot(pools, ml, 'c#1', now, now + HOUR)).toEqual({
      ok: false,
      reason: 'role ml (all 2 of its maxConcurrent running)',
    });
    expect(await releaseRoleSlot(pools, ml, 'a#1', now)).toBe(true);
    expect(await admitRoleSlot(pools, ml, 'c#1', now, now + HOUR)).toEqual({ ok: true });
    expect(Object.keys(pools.providers.get('role:ml')?.slots ?? {}).sort()).toEqual(['b#1', 'c#1']);
  });

  it('lets a slot whose attempt was lost lapse at its hold time', async () => {
    const pools = new SimStore();
    const now = Date.now();
    await admitRoleSlot(pools, ml, 'a#1', now, now + 1000);
    await admitRoleSlot(pools, ml, 'b#1', now, now + 1000);
    expect((await admitRoleSlot(pools, ml, 'c#1', now + 999, now + HOUR)).ok).toBe(false);
    expect((await admitRoleSlot(pools, ml, 'c#1', now + 1001, now + HOUR)).ok).toBe(true);
  });

  it('never delays a start by rate, however many start at once', async () => {
    const pools = new SimStore();
    const wide = { ...ml, maxConcurrent: 500 };
    const now = Date.now();
    for (let i = 0; i < 500; i++)
      expect((await admitRoleSlot(pools, wide, `t${i}#1`, now, now + HOUR)).ok).toBe(true);
    expect(pools.providers.get('role:ml')?.bucket.tokens).toBeGreaterThan(0);
  });

  it('writes nothing for a role without a limit', async () => {
    const pools = new SimStore();
    const backend = BUILT_IN_ROLES.backend as NonNullable<typeof BUILT_IN_ROLES.backend>;
    expect(await admitRoleSlot(pools, backend, 'a#1', Date.now(), Date.now() + HOUR)).toEqual({ ok: true });
    expect(await releaseRoleSlot(pools, backend, 'a#1', Date.now())).toBe(false);
    expect(pools.usage.writes).toBe(0);
    expect(rolePoolLimits(backend).concurrency).toBeGreaterThan(1e6);
  });

  it('names each role’s queue apart from any provider’s', () => {
    expect(roleQueue('ml')).toBe('role:ml');
    expect(roleOfQueue('role:ml')).toBe('ml');
    expect(roleOfQueue('claude')).toBeUndefined();
  });
});

describe('withRoleLimits (ROLE_LIMITS, -c roleLimits)', () => {
  it('sets maxConcurrent on the roles named and leaves the others as they are', () => {
    const roles = withRoleLimits(
      BUILT_IN_ROLES,
      '{"ml": {"maxConcurrent": 2}, "docs": {"maxConcurrent": 9}}',
      'X',
    );
    expect(roles.ml?.maxConcurrent).toBe(2);
    expect(roles.docs?.maxConcurrent).toBe(9);
    expect(roles.backend).toEqual(BUILT_IN_ROLES.backend);
    expect(BUILT_IN_ROLES.ml?.maxConcurrent).toBeUndefined();
    expect(withRoleLimits(BUILT_IN_ROLES, undefined, 'X')).toEqual(BUILT_IN_ROLES);
    expect(withRoleLimits(BUILT_IN_ROLES, ' ', 'X')).toEqual(BUILT_IN_ROLES);
  });

  it.each([
    ['not json', 'ROLE_LIMITS: not JSON.'],
    ['{"nope": {"maxConcurrent": 1}}', 'no agent role "nope"'],
    ['{"ml": {"maxConcurrent": 0}}', 'ROLE_LIMITS: ml.maxConcurrent'],
    ['{"ml": {"maxConcurrent": 1.5}}', 'ROLE_LIMITS: ml.maxConcurrent'],
    ['{"ml": {"concurrency": 1}}', 'ROLE_LIMITS: ml'],
    ['[1]', 'ROLE_LIMITS: (root)'],
  ])('refuses %s, naming it', (text, message) => {
    expect(() => withRoleLimits(BUILT_IN_ROLES, text, 'ROLE_LIMITS')).toThrow(ConfigError);
    expect(() => withRoleLimits(BUILT_IN_ROLES, text, 'ROLE_LIMITS')).toThrow(message);
  });
});
