import { describe, expect, it } from '@jest/globals';
import { parseQuotas, QuotaExceededError } from '../../../lib/core/quotas.js';
import {
  checkDailyBudget,
  secondsToNextDay,
  spendDay,
  type TenantSpendStore,
  tenantSpendHooks,
} from '../../../lib/core/tenant-spend.js';

/** A counter in memory, standing for the stores' per-tenant, per-day rows. */
function memorySpend(): TenantSpendStore & { rows: Map<string, number> } {
  const rows = new Map<string, number>();
  return {
    rows,
    async addTenantSpend(tenant, day, usd) {
      rows.set(`${tenant}/${day}`, (rows.get(`${tenant}/${day}`) ?? 0) + usd);
    },
    async tenantSpend(tenant, day) {
      return rows.get(`${tenant}/${day}`) ?? 0;
    },
  };
}

const policy = parseQuotas(JSON.stringify({ '*': { usdPerDay: 10 }, acme: { usdPerDay: 1 } }));
const noon = new Date('2026-12-02T12:00:00Z');

describe('the daily USD budget of a tenant', () => {
  it('counts a day from 00:00 UTC', () => {
    expect(spendDay('2026-12-02T23:59:59.999Z')).toBe('2026-12-02');
    expect(spendDay(Date.parse('2026-12-03T00:00:00Z'))).toBe('2026-12-03');
    expect(secondsToNextDay(noon)).toBe(12 * 3600);
    expect(secondsToNextDay(new Date('2026-12-31T23:59:59.500Z'))).toBe(1);
  });

  it("refuses a submission once today's spend reaches the budget, with the wait until midnight", async () => {
    // Arrange
    const spend = memorySpend();
    await spend.addTenantSpend('acme', '2026-12-02', 0.6);
    await checkDailyBudget(spend, policy, 'acme', noon); // under: passes
    await spend.addTenantSpend('acme', '2026-12-02', 0.4);
    // Act
    const err = await checkDailyBudget(spend, policy, 'acme', noon).catch((e: unknown) => e);
    // Assert
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect((err as QuotaExceededError).retryAfterSeconds).toBe(12 * 3600);
    expect((err as Error).message).toContain('daily budget of $1 (usdPerDay)');
    // yesterday's spend and other tenants do not count
    await expect(
      checkDailyBudget(spend, policy, 'acme', new Date('2026-12-03T00:00:01Z')),
    ).resolves.toBeUndefined();
    await expect(checkDailyBudget(spend, policy, 'globex', noon)).resolves.toBeUndefined();
  });

  it("gives the gateway a check before each call and counts each call's cost on its day", async () => {
    // Arrange
    const spend = memorySpend();
    const hooks = tenantSpendHooks(
      spend,
      policy,
      'acme',
      () => undefined,
      () => noon,
    );
    // Act
    hooks.onCall({ at: '2026-12-02T11:00:00.000Z', costUsd: 0.75 });
    hooks.onCall({ at: '2026-12-01T23:00:00.000Z', costUsd: 5 });
    const under = await hooks.tenantBudget();
    hooks.onCall({ at: '2026-12-02T11:30:00.000Z', costUsd: 0.25 });
    const over = await hooks.tenantBudget();
    // Assert
    expect(under).toEqual({ exceeded: false });
    expect(over.exceeded).toBe(true);
    expect(over.message).toMatch(/^AutoDev budget exceeded: Tenant acme has spent \$1\.0000 .*\(usdPerDay\)/);
    expect(spend.rows.get('acme/2026-12-01')).toBe(5);
  });

  it("judges the next call only once the last call's cost is counted, however slow the store", async () => {
    // Arrange: a store whose writes land 50 ms after they are made (DynamoDB under load)
    const rows = memorySpend();
    const slow: TenantSpendStore = {
      addTenantSpend: (tenant, day, usd) =>
        new Promise<void>((done) =>
          setTimeout(() => void rows.addTenantSpend(tenant, day, usd).then(done), 50),
        ),
      tenantSpend: (tenant, day) => rows.tenantSpend(tenant, day),
    };
    const hooks = tenantSpendHooks(
      slow,
      policy,
      'acme',
      () => undefined,
      () => noon,
    );
    // Act: a call over the whole budget, and the check before the next call at once
    hooks.onCall({ at: noon.toISOString(), costUsd: 1.5 });
    const next = await hooks.tenantBudget();
    // Assert
    expect(next.exceeded).toBe(true);
  });

  it('lets the agent go on when the counter cannot be read, and says so', async () => {
    const errors: unknown[] = [];
    const broken: TenantSpendStore = {
      addTenantSpend: () => Promise.reject(new Error('store down')),
      tenantSpend: () => Promise.reject(new Error('store down')),
    };
    const hooks = tenantSpendHooks(
      broken,
      policy,
      'acme',
      (e) => errors.push(e),
      () => noon,
    );
    expect(await hooks.tenantBudget()).toEqual({ exceeded: false });
    hooks.onCall({ at: noon.toISOString(), costUsd: 1 });
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(2);
  });

  it('refuses a usdPerDay that is not a positive number, naming the field', () => {
    expect(() => parseQuotas('{"acme": {"usdPerDay": -1}}')).toThrow(/acme\.usdPerDay/);
    expect(() => parseQuotas('{"acme": {"usdPerDay": "5"}}')).toThrow(/acme\.usdPerDay/);
  });
});
