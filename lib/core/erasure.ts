import { authorize, type Principal } from './access.js';
import { ConflictError, NotFoundError } from './errors.js';
import type { ErasableAuditLog, ErasableTaskStore, TaskErasure } from './ports.js';
import type { Scheduler, ScheduleStore } from './schedules.js';
import { TASK_STATUSES, type TaskStatus, TERMINAL_STATUSES } from './schemas.js';
import type { ErasableTenantSpendStore } from './tenant-spend.js';

/** Audit entries younger than this are kept by an erasure unless configured otherwise (`AUTODEV_AUDIT_HOLD_DAYS`). */
export const DEFAULT_AUDIT_HOLD_DAYS = 365;

/** What `DELETE /v1/tenants/{tenant}/data` answers: what was erased, per kind, and what was kept. */
export interface ErasureReport {
  tenant: string;
  /** When the erasure ran (ISO). */
  at: string;
  erased: TaskErasure & {
    schedules: number;
    auditEntries: number;
    /** The tenant's daily model-spend counters (one per UTC day it spent on). */
    spendCounters: number;
  };
  /** Audit entries at or after this time (ISO) are under the legal hold and were kept. */
  auditKeptSince: string;
}

/** The tenant still has tasks that are not finished: they are cancelled first (409). */
export class TenantBusyError extends ConflictError {
  override readonly code = 'tasks_not_finished';
}

export interface TenantErasureDeps {
  tasks: ErasableTaskStore;
  /** The tenant's daily model-spend counters (the usdPerDay quota's). */
  spend: ErasableTenantSpendStore;
  /** The tenant's schedules: each is taken off the scheduler, then deleted. Absent where not served. */
  schedules?: { store: ScheduleStore; scheduler: Scheduler };
  /** Absent where no audit trail is kept. */
  audit?: ErasableAuditLog;
  /** Audit entries younger than this many days are kept (the legal hold). */
  auditHoldDays?: number;
  now?: () => Date;
}

const UNFINISHED = TASK_STATUSES.filter((s) => !TERMINAL_STATUSES.includes(s));

/**
 * Erases one tenant's data: its schedules, its finished tasks with their logs, idempotency keys and
 * branch records, its daily model-spend counters, and its audit entries older than the legal hold. Only the tenant's own admin may;
 * another tenant's name is a 404 as any other tenant's id. While a task of the tenant is not
 * finished, nothing is erased (409 naming how many in which status): cancel them first.
 */
export class TenantErasure {
  private readonly now: () => Date;

  constructor(private readonly deps: TenantErasureDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async erase(principal: Principal, tenant: string): Promise<ErasureReport> {
    authorize(principal, 'tenant:erase');
    if (tenant !== principal.tenant) throw new NotFoundError(`No tenant ${tenant.slice(0, 64)}.`);
    await this.refuseWhileBusy(tenant);
    const now = this.now();
    const holdMs = (this.deps.auditHoldDays ?? DEFAULT_AUDIT_HOLD_DAYS) * 86_400_000;
    const auditKeptSince = new Date(now.getTime() - holdMs).toISOString();
    // schedules first: none fires a new task while the tasks are erased
    let schedules = 0;
    if (this.deps.schedules) {
      const { store, scheduler } = this.deps.schedules;
      for (const schedule of await store.list(tenant)) {
        await scheduler.remove(schedule);
        await store.delete(tenant, schedule.id);
        schedules++;
      }
    }
    const tasks = await this.deps.tasks.eraseTenant(tenant);
    const spendCounters = await this.deps.spend.eraseTenantSpend(tenant);
    const auditEntries = this.deps.audit ? await this.deps.audit.eraseBefore(tenant, auditKeptSince) : 0;
    return {
      tenant,
      at: now.toISOString(),
      erased: { ...tasks, schedules, spendCounters, auditEntries },
      auditKeptSince,
    };
  }

  private async refuseWhileBusy(tenant: string): Promise<void> {
    const busy: Partial<Record<TaskStatus, number>> = {};
    let total = 0;
    for (const status of UNFINISHED) {
      const page = await this.deps.tasks.list(tenant, { status, limit: 100 });
      if (page.items.length === 0) continue;
      busy[status] = page.items.length;
      total += page.items.length;
    }
    if (total > 0) {
      const what = Object.entries(busy)
        .map(([s, n]) => `${n === 100 ? '100 or more' : n} ${s}`)
        .join(', ');
      throw new TenantBusyError(
        `Tenant ${tenant} has tasks not yet finished (${what}); cancel them, then erase again.`,
        busy,
      );
    }
  }
}
