import { QuotaExceededError, type QuotaPolicy, quotasOf } from './quotas.js';

/**
 * A tenant's daily USD budget (`usdPerDay` in AUTODEV_QUOTAS), counted from the model gateway's
 * ledger. A day is a UTC calendar day: every model call adds its cost to the tenant's counter for
 * the day the call was made, and the budget opens again at 00:00 UTC. Pure: the counter lives in
 * the store (TenantSpendStore), one row or item per tenant and day.
 */

/** Where each tenant's spend per day is counted: one small record per tenant and UTC day. */
export interface TenantSpendStore {
  /** Adds `usd` to the tenant's spend on `day` (`YYYY-MM-DD`, UTC). */
  addTenantSpend(tenant: string, day: string, usd: number): Promise<void>;
  /** The tenant's spend on `day`; 0 when nothing was spent. */
  tenantSpend(tenant: string, day: string): Promise<number>;
}

/** A spend store that can erase one tenant's counters, for `DELETE /v1/tenants/{tenant}/data`. */
export interface ErasableTenantSpendStore extends TenantSpendStore {
  /** Deletes every daily counter of the tenant, whatever its day; returns how many there were. */
  eraseTenantSpend(tenant: string): Promise<number>;
}

/** The UTC day of an instant, as the counter's key: `2026-12-02`. */
export function spendDay(at: Date | number | string): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** Whole seconds from `now` to the next 00:00 UTC, when a spent daily budget opens again (at least 1). */
export function secondsToNextDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

/** The message naming the quota, for the API's 429 and the gateway's refusal alike. */
function spentMessage(tenant: string, spent: number, budget: number): string {
  return `Tenant ${tenant} has spent $${spent.toFixed(4)} on models today (UTC), its daily budget of $${budget} (usdPerDay); it opens again at 00:00 UTC.`;
}

/** Where the tenant stands against its daily budget now; undefined when it has none. */
export async function dailyBudgetState(
  spend: TenantSpendStore,
  policy: QuotaPolicy,
  tenant: string,
  now: Date,
): Promise<{ exceeded: boolean; spent: number; budget: number; message: string } | undefined> {
  const budget = quotasOf(policy, tenant).usdPerDay;
  if (budget === undefined) return undefined;
  const spent = await spend.tenantSpend(tenant, spendDay(now));
  return { exceeded: spent >= budget, spent, budget, message: spentMessage(tenant, spent, budget) };
}

/** Refuses a submission while the tenant's daily budget is spent: 429 until 00:00 UTC. */
export async function checkDailyBudget(
  spend: TenantSpendStore,
  policy: QuotaPolicy,
  tenant: string,
  now: Date,
): Promise<void> {
  const state = await dailyBudgetState(spend, policy, tenant, now);
  if (state?.exceeded) throw new QuotaExceededError(state.message, secondsToNextDay(now));
}

/**
 * What the model gateway asks before every forwarded call of one of the tenant's attempts, and how
 * each call's cost reaches the counter. Without a daily budget for the tenant the spend is still
 * counted (a budget set later sees today's spend).
 */
export function tenantSpendHooks(
  spend: TenantSpendStore,
  policy: QuotaPolicy,
  tenant: string,
  onError: (err: unknown) => void,
  now: () => Date = () => new Date(),
): {
  tenantBudget: () => Promise<{ exceeded: boolean; message?: string }>;
  onCall: (call: { at: string; costUsd: number }) => void;
} {
  // the counts this session still has in flight: a check waits for them, so the next call is
  // held to what the last one cost, never judged before its spend was counted
  let counting: Promise<unknown> = Promise.resolve();
  return {
    // a store that cannot answer does not stop the agent: the counter catches up with the next call
    tenantBudget: async () => {
      await counting;
      const state = await dailyBudgetState(spend, policy, tenant, now()).catch((err: unknown) => {
        onError(err);
        return undefined;
      });
      return state?.exceeded
        ? { exceeded: true, message: `AutoDev budget exceeded: ${state.message} Stop now; do not retry.` }
        : { exceeded: false };
    },
    onCall: (call) => {
      if (call.costUsd <= 0) return;
      const counted = spend.addTenantSpend(tenant, spendDay(call.at), call.costUsd).catch(onError);
      counting = Promise.all([counting, counted]);
    },
  };
}
