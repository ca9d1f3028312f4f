import { beforeEach, describe, expect, it } from '@jest/globals';
import type { Principal } from '../../lib/core/access.js';
import { NotFoundError } from '../../lib/core/errors.js';
import {
  type RoleSetting,
  RoleSettingsService,
  type RoleSettingsStore,
} from '../../lib/core/role-settings.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';

const ACME_ADMIN: Principal = { tenant: 'acme', role: 'admin', subject: 'alice' };
const AT = new Date('2026-12-02T10:00:00.000Z');

const setting = (extra: Partial<RoleSetting> = {}): RoleSetting => ({
  tenant: 'acme',
  role: 'devops',
  fullAccess: true,
  updatedBy: 'alice',
  updatedAt: AT.toISOString(),
  ...extra,
});

/**
 * What every adapter keeping role settings (full-access mode) must do, through the store and
 * through the core use case the API and the executors call.
 */
export function roleSettingsContract(name: string, factory: () => Promise<RoleSettingsStore>): void {
  describe(`RoleSettingsStore contract: ${name}`, () => {
    let store: RoleSettingsStore;
    let service: RoleSettingsService;

    beforeEach(async () => {
      store = await factory();
      service = new RoleSettingsService(
        store,
        () => BUILT_IN_ROLES,
        () => AT,
      );
    });

    it('has no setting until one is put, then the one put', async () => {
      expect(await store.get('acme', 'devops')).toBeUndefined();
      await store.put(setting());
      expect(await store.get('acme', 'devops')).toEqual(setting());
    });

    it('keeps the last change of a tenant and role', async () => {
      await store.put(setting());
      await store.put(
        setting({ fullAccess: false, updatedBy: 'bob', updatedAt: '2026-12-02T11:00:00.000Z' }),
      );
      expect(await store.get('acme', 'devops')).toEqual(
        setting({ fullAccess: false, updatedBy: 'bob', updatedAt: '2026-12-02T11:00:00.000Z' }),
      );
    });

    it('keeps each tenant and each role apart', async () => {
      await store.put(setting());
      expect(await store.get('globex', 'devops')).toBeUndefined();
      expect(await store.get('acme', 'backend')).toBeUndefined();
      await store.put(setting({ tenant: 'globex', fullAccess: false }));
      expect((await store.get('acme', 'devops'))?.fullAccess).toBe(true);
      expect((await store.get('globex', 'devops'))?.fullAccess).toBe(false);
    });

    it('lets an admin turn full access on and off for its own tenant, recording who and when', async () => {
      // Act
      const on = await service.setFullAccess(ACME_ADMIN, 'devops', true);
      // Assert
      expect(on).toEqual(setting());
      expect(await service.fullAccess('acme', 'devops')).toBe(true);
      expect(await service.fullAccess('globex', 'devops')).toBe(false);
      expect(await service.fullAccess('acme', 'backend')).toBe(false);
      expect(await service.read({ tenant: 'acme', role: 'viewer', subject: 'v' }, 'devops')).toEqual(
        setting(),
      );
      await service.setFullAccess(ACME_ADMIN, 'devops', false);
      expect(await service.fullAccess('acme', 'devops')).toBe(false);
    });

    it('refuses every other access role (403) and an unknown agent role (404), changing nothing', async () => {
      for (const role of ['operator', 'submitter', 'viewer'] as const) {
        await expect(
          service.setFullAccess({ tenant: 'acme', role, subject: role }, 'devops', true),
        ).rejects.toMatchObject({ status: 403 });
      }
      await expect(service.setFullAccess(ACME_ADMIN, 'nope', true)).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.get('acme', 'devops')).toBeUndefined();
      expect(await store.get('acme', 'nope')).toBeUndefined();
      expect(await service.read(ACME_ADMIN, 'devops')).toMatchObject({ fullAccess: false, updatedBy: '' });
    });
  });
}
