import { beforeEach, describe, expect, it } from '@jest/globals';
import type { TenantSpendStore } from '../../lib/core/tenant-spend.js';

/** The behaviour every adapter counting tenants' model spend per UTC day must have. */
export function tenantSpendContract(name: string, factory: () => Promise<TenantSpendStore>): void {
  describe(`TenantSpendStore contract: ${name}`, () => {
    let store: TenantSpendStore;
    beforeEach(async () => {
      store = await factory();
    });

    it('adds each call to its tenant and day only', async () => {
      // Arrange
      await store.addTenantSpend('acme', '2026-12-02', 0.25);
      await store.addTenantSpend('acme', '2026-12-02', 0.125);
      await store.addTenantSpend('acme', '2026-12-01', 5);
      await store.addTenantSpend('globex', '2026-12-02', 7);
      // Act / Assert
      expect(await store.tenantSpend('acme', '2026-12-02')).toBeCloseTo(0.375, 9);
      expect(await store.tenantSpend('acme', '2026-12-01')).toBe(5);
      expect(await store.tenantSpend('globex', '2026-12-02')).toBe(7);
      expect(await store.tenantSpend('initech', '2026-12-02')).toBe(0);
    });

    it('loses no concurrent addition', async () => {
      await Promise.all(Array.from({ length: 20 }, () => store.addTenantSpend('acme', '2026-12-02', 0.5)));
      expect(await store.tenantSpend('acme', '2026-12-02')).toBe(10);
    });
  });
}
