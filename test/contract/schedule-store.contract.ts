import { beforeEach, describe, expect, it } from '@jest/globals';
import { newScheduleId, type Schedule, type ScheduleStore } from '../../lib/core/schedules.js';

export const makeSchedule = (extra: Partial<Schedule> = {}): Schedule => ({
  id: newScheduleId(),
  tenant: 'acme',
  name: 'nightly',
  schedule: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Paris',
  task: { repo: 'https://example.com/acme/app.git', prompt: 'Update the dependencies.', labels: ['deps'] },
  createdAt: '2026-01-01T00:00:00.000Z',
  enabled: true,
  ...extra,
});

/** The behaviour every ScheduleStore adapter must have; `factory` returns a fresh, empty store. */
export function scheduleStoreContract(name: string, factory: () => Promise<ScheduleStore>): void {
  describe(`ScheduleStore contract: ${name}`, () => {
    let store: ScheduleStore;
    beforeEach(async () => {
      store = await factory();
    });

    it('returns a created schedule to its tenant only', async () => {
      const s = makeSchedule();
      await store.create(s);
      expect(await store.get('acme', s.id)).toEqual(s);
      expect(await store.get('globex', s.id)).toBeUndefined();
      expect(await store.get('acme', newScheduleId())).toBeUndefined();
    });

    it('lists one tenant schedules only', async () => {
      const a = makeSchedule();
      const b = makeSchedule({ name: 'weekly', schedule: 'rate(7 days)' });
      await store.create(a);
      await store.create(b);
      await store.create(makeSchedule({ tenant: 'globex' }));
      const items = await store.list('acme');
      expect(items.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
      expect(items.find((s) => s.id === b.id)).toEqual(b);
      expect(await store.list('initech')).toEqual([]);
    });

    it('deletes a schedule for its tenant only, and deleting twice is harmless', async () => {
      const s = makeSchedule();
      await store.create(s);
      await store.delete('globex', s.id);
      expect(await store.get('acme', s.id)).toEqual(s);
      await store.delete('acme', s.id);
      await store.delete('acme', s.id);
      expect(await store.get('acme', s.id)).toBeUndefined();
      expect(await store.list('acme')).toEqual([]);
    });
  });
}
