import { z } from 'zod';
import { ConfigError, TooManyRequestsError } from './errors.js';
import type { TaskStore } from './ports.js';
import { TASK_STATUSES, type Task, TERMINAL_STATUSES } from './schemas.js';

/** What one tenant may use; a quota left out is unlimited. */
export const TenantQuotas = z
  .object({
    /** Tasks submitted in any rolling hour. */
    tasksPerHour: z.number().int().min(1).max(100_000).optional(),
    /** Tasks not yet ended at once: queued, blocked, running or waiting to retry. */
    activeTasks: z.number().int().min(1).max(100_000).optional(),
    /** USD spent on models per UTC day, from the model gateway's ledger (lib/core/tenant-spend.ts). */
    usdPerDay: z.number().positive().max(10_000_000).optional(),
  })
  .strict();
export type TenantQuotas = z.infer<typeof TenantQuotas>;

/** Quotas by tenant, `*` for every tenant not named. Default: none, everything unlimited. */
export type QuotaPolicy = Readonly<Record<string, TenantQuotas>>;
export const UNLIMITED: QuotaPolicy = {};

/** How long a client refused for its active tasks is told to wait: one of them has to end first. */
export const ACTIVE_RETRY_AFTER_SECONDS = 30;

/** A quota is used up: 429, with the seconds after which asking again can succeed. */
export class QuotaExceededError extends TooManyRequestsError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** `AUTODEV_QUOTAS`: JSON `{"*": {"tasksPerHour": 500}, "acme": {"activeTasks": 20}}`. */
export function parseQuotas(text: string, variable = 'AUTODEV_QUOTAS'): QuotaPolicy {
  if (!text.trim()) return UNLIMITED;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${variable}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = z
    .record(z.string().regex(/^(\*|[a-z0-9][a-z0-9_-]{0,62})$/, 'a tenant name or *'), TenantQuotas)
    .safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `${variable}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

export function quotasOf(policy: QuotaPolicy, tenant: string): TenantQuotas {
  return { ...policy['*'], ...(Object.hasOwn(policy, tenant) ? policy[tenant] : {}) };
}

/** Up to `max` of the tenant's tasks (newest first), paging through the store. */
async function newest(store: TaskStore, tenant: string, max: number, status?: Task['status']) {
  const items: Task[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(tenant, { status, limit: Math.min(500, max - items.length), cursor });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

const ACTIVE = TASK_STATUSES.filter((s) => !TERMINAL_STATUSES.includes(s));

/**
 * Refuses a submission of `adding` tasks (a batch: all of them) that would take the tenant over one
 * of its quotas (QuotaExceededError, 429 naming the quota). Counted from the store: submissions at
 * the same instant may pass together.
 */
export async function checkQuotas(
  store: TaskStore,
  tenant: string,
  policy: QuotaPolicy,
  now: Date,
  adding = 1,
): Promise<void> {
  const quotas = quotasOf(policy, tenant);
  if (quotas.tasksPerHour !== undefined) {
    if (adding > quotas.tasksPerHour) {
      throw new QuotaExceededError(
        `The batch has ${adding} tasks; tenant ${tenant}'s quota of tasks per hour (tasksPerHour) is ${quotas.tasksPerHour}.`,
        3600,
      );
    }
    // the tasks of the last hour that leave room for `adding` more: the oldest of them must be older
    const recent = await newest(store, tenant, quotas.tasksPerHour - adding + 1);
    const oldest = recent[quotas.tasksPerHour - adding];
    const hourAgo = now.getTime() - 3_600_000;
    if (oldest && Date.parse(oldest.createdAt) > hourAgo) {
      const wait = Math.max(1, Math.ceil((Date.parse(oldest.createdAt) - hourAgo) / 1000));
      const has =
        adding === 1
          ? `has submitted ${quotas.tasksPerHour} tasks in the last hour`
          : `would pass ${quotas.tasksPerHour} tasks in the last hour with these ${adding}`;
      throw new QuotaExceededError(
        `Tenant ${tenant} ${has}, its quota of tasks per hour (tasksPerHour); try again in ${wait} s.`,
        wait,
      );
    }
  }
  if (quotas.activeTasks !== undefined) {
    // room for `adding` more: at most activeTasks - adding not yet ended
    const room = quotas.activeTasks - adding + 1;
    let active = 0;
    for (const status of ACTIVE) {
      if (room <= 0) break;
      active += (await newest(store, tenant, room - active, status)).length;
      if (active >= room) break;
    }
    if (room <= 0 || active >= room) {
      const has =
        adding === 1
          ? `has ${quotas.activeTasks} tasks not yet ended`
          : `would have more than ${quotas.activeTasks} tasks not yet ended with these ${adding}`;
      throw new QuotaExceededError(
        `Tenant ${tenant} ${has}, its quota of active tasks (activeTasks); try again when one ends.`,
        ACTIVE_RETRY_AFTER_SECONDS,
      );
    }
  }
}
