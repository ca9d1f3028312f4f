import { beforeEach, describe, expect, it } from '@jest/globals';
import type { Principal } from '../../lib/core/access.js';
import { TenantBusyError, TenantErasure } from '../../lib/core/erasure.js';
import { NotFoundError } from '../../lib/core/errors.js';
import { transition } from '../../lib/core/lifecycle.js';
import type { ErasableAuditLog, ErasableTaskStore } from '../../lib/core/ports.js';
import type { Schedule, Scheduler, ScheduleStore } from '../../lib/core/schedules.js';
import type { Task } from '../../lib/core/schemas.js';
import type { ErasableTenantSpendStore } from '../../lib/core/tenant-spend.js';
import { makeTask } from '../support/tasks.js';
import { makeEntry } from './audit-log.contract.js';
import { makeSchedule } from './schedule-store.contract.js';

/** The stores one shape keeps a tenant's data in, fresh and empty, on one database. */
export interface ErasureStores {
  tasks: ErasableTaskStore;
  /** The daily model-spend counters (the task store itself in both shapes). */
  spend: ErasableTenantSpendStore;
  schedules: ScheduleStore;
  audit: ErasableAuditLog;
}

const ACME_ADMIN: Principal = { tenant: 'acme', role: 'admin', subject: 'root' };
const DAY = 86_400_000;
const NOW = new Date();

/** A scheduler that remembers what was taken off it. */
class RecordingScheduler implements Scheduler {
  removed: string[] = [];
  async upsert(): Promise<void> {}
  async remove(s: Schedule): Promise<void> {
    this.removed.push(s.id);
  }
}

/**
 * What erasing a tenant does on every shape's stores (SQLite and DynamoDB): the same cases, run
 * against each adapter through the core use case.
 */
export function tenantErasureContract(name: string, factory: () => Promise<ErasureStores>): void {
  describe(`tenant erasure contract: ${name}`, () => {
    let stores: ErasureStores;
    let scheduler: RecordingScheduler;
    let erasure: TenantErasure;

    beforeEach(async () => {
      stores = await factory();
      scheduler = new RecordingScheduler();
      erasure = new TenantErasure({
        tasks: stores.tasks,
        spend: stores.spend,
        schedules: { store: stores.schedules, scheduler },
        audit: stores.audit,
        auditHoldDays: 30,
        now: () => NOW,
      });
    });

    /** A task of `tenant` that ended (cancelled), with two log lines and an idempotency key. */
    const finishedTask = async (tenant: string, key: string, extra: Partial<Task> = {}) => {
      const task = makeTask({ tenant });
      await stores.tasks.create(task, { key: `${tenant}#${key}`, bodyHash: key, ttlSeconds: 3600 });
      await stores.tasks.appendLogs(task.id, [`${key} one`, `${key} two`], new Date());
      const ended = transition(task, 'cancelled', extra, new Date());
      await stores.tasks.put(ended, 0);
      return ended;
    };
    const everything = async (tenant: string) => ({
      tasks: (await stores.tasks.list(tenant, { limit: 100 })).items.length,
      schedules: (await stores.schedules.list(tenant)).length,
      audit: (await stores.audit.list(tenant, { limit: 500 })).items.length,
    });

    it("erases the tenant's finished tasks, logs, keys, schedules and old audit entries, and reports the counts", async () => {
      // Arrange
      const a1 = await finishedTask('acme', 'k1', { branch: 'autodev/x', commit: 'abc' });
      await finishedTask('acme', 'k2');
      const b1 = await finishedTask('globex', 'k1');
      const schedule = makeSchedule();
      await stores.schedules.create(schedule);
      await stores.schedules.create(makeSchedule({ tenant: 'globex' }));
      const old = new Date(NOW.getTime() - 40 * DAY).toISOString();
      const recent = new Date(NOW.getTime() - 2 * DAY).toISOString();
      await stores.audit.append(makeEntry({ at: old }));
      await stores.audit.append(makeEntry({ at: old }));
      await stores.audit.append(makeEntry({ at: recent }));
      await stores.audit.append(makeEntry({ tenant: 'globex', at: old }));
      // model spend on three days (the usdPerDay counters), the other tenant's on one
      for (const day of ['2026-11-30', '2026-12-01', '2026-12-02'])
        await stores.spend.addTenantSpend('acme', day, 1.5);
      await stores.spend.addTenantSpend('globex', '2026-12-02', 4);
      const globexBefore = await everything('globex');
      // Act
      const report = await erasure.erase(ACME_ADMIN, 'acme');
      // Assert
      expect(report.erased).toEqual({
        tasks: 2,
        logLines: 4,
        idempotencyKeys: 2,
        branches: 1,
        schedules: 1,
        spendCounters: 3,
        auditEntries: 2,
      });
      for (const day of ['2026-11-30', '2026-12-01', '2026-12-02'])
        expect(await stores.spend.tenantSpend('acme', day)).toBe(0);
      expect(await stores.spend.tenantSpend('globex', '2026-12-02')).toBe(4);
      expect(report.auditKeptSince).toBe(new Date(NOW.getTime() - 30 * DAY).toISOString());
      expect(scheduler.removed).toEqual([schedule.id]);
      expect(await everything('acme')).toEqual({ tasks: 0, schedules: 0, audit: 1 });
      expect(await stores.tasks.get('acme', a1.id)).toBeUndefined();
      expect((await stores.tasks.readLogs(a1.id, 0, 100)).lines).toEqual([]);
      // the other tenant: untouched, its logs too
      expect(await everything('globex')).toEqual(globexBefore);
      expect(globexBefore).toEqual({ tasks: 1, schedules: 1, audit: 1 });
      expect((await stores.tasks.readLogs(b1.id, 0, 100)).lines).toHaveLength(2);
    });

    it('frees the idempotency keys of erased tasks, and only those', async () => {
      await finishedTask('acme', 'same');
      const other = await finishedTask('globex', 'same');
      await erasure.erase(ACME_ADMIN, 'acme');
      const again = await stores.tasks.create(makeTask(), {
        key: 'acme#same',
        bodyHash: 'same',
        ttlSeconds: 60,
      });
      expect(again.created).toBe(true);
      const theirs = await stores.tasks.create(makeTask({ tenant: 'globex' }), {
        key: 'globex#same',
        bodyHash: 'same',
        ttlSeconds: 60,
      });
      expect(theirs).toMatchObject({ created: false, task: { id: other.id } });
    });

    it('refuses (409) while a task of the tenant is not finished, and erases nothing', async () => {
      // Arrange
      await finishedTask('acme', 'k1');
      const running = makeTask();
      await stores.tasks.create(running);
      await stores.tasks.put(transition(running, 'running', {}, new Date()), 0);
      await stores.tasks.create(makeTask());
      await stores.schedules.create(makeSchedule());
      // Act
      const refused = erasure.erase(ACME_ADMIN, 'acme');
      // Assert
      await expect(refused).rejects.toBeInstanceOf(TenantBusyError);
      await expect(refused).rejects.toMatchObject({ status: 409, details: { queued: 1, running: 1 } });
      expect(await everything('acme')).toMatchObject({ tasks: 3, schedules: 1 });
      expect(scheduler.removed).toEqual([]);
    });

    it('never deletes a task that is not finished, even asked directly', async () => {
      const queued = makeTask();
      await stores.tasks.create(queued);
      await stores.tasks.appendLogs(queued.id, ['still going'], new Date());
      const done = await finishedTask('acme', 'k1');
      const result = await stores.tasks.eraseTenant('acme');
      expect(result.tasks).toBe(1);
      expect(await stores.tasks.get('acme', queued.id)).toEqual(queued);
      expect((await stores.tasks.readLogs(queued.id, 0, 10)).lines).toHaveLength(1);
      expect(await stores.tasks.get('acme', done.id)).toBeUndefined();
    });

    it("answers 404 to another tenant's admin and 403 to the tenant's operator, erasing nothing", async () => {
      await finishedTask('acme', 'k1');
      await expect(
        erasure.erase({ tenant: 'globex', role: 'admin', subject: 'g' }, 'acme'),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        erasure.erase({ tenant: 'acme', role: 'operator', subject: 'o' }, 'acme'),
      ).rejects.toMatchObject({ status: 403 });
      expect((await everything('acme')).tasks).toBe(1);
    });
  });
}
