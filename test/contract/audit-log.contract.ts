import { describe, expect, it } from '@jest/globals';
import type { NewAuditEntry } from '../../lib/core/audit.js';
import { ValidationError } from '../../lib/core/errors.js';
import type { AuditLog } from '../../lib/core/ports.js';

let n = 0;
export function makeEntry(over: Partial<NewAuditEntry> = {}): NewAuditEntry {
  n++;
  return {
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    tenant: 'acme',
    subject: 'alice',
    action: 'task.create',
    target: `t${n}`,
    status: 201,
    outcome: 'ok',
    requestId: `r-${n}-${Math.random().toString(36).slice(2)}`,
    method: 'POST',
    path: '/v1/tasks',
    ...over,
  };
}

/** What every AuditLog adapter must do (the SQLite table and the DynamoDB items). */
export function auditLogContract(name: string, make: () => Promise<AuditLog>): void {
  describe(`AuditLog contract (${name})`, () => {
    it("lists a tenant's entries newest first, as appended, and none of another tenant's", async () => {
      const log = await make();
      const a1 = makeEntry();
      const b = makeEntry({ tenant: 'globex' });
      const anon = makeEntry({ tenant: null, subject: null, status: 401, outcome: 'unauthorized' });
      const a2 = makeEntry({ action: 'task.cancel', status: 403, outcome: 'forbidden', subject: 'bob' });
      for (const e of [a1, b, anon, a2]) await log.append(e);
      const page = await log.list('acme', { limit: 10 });
      expect(page.items.map(({ id: _id, ...e }) => e)).toEqual([a2, a1]);
      expect(page.nextCursor).toBeUndefined();
      expect((await log.list('globex', { limit: 10 })).items.map((e) => e.target)).toEqual([b.target]);
    });

    it('filters by action, subject, result and time', async () => {
      const log = await make();
      const ok = makeEntry();
      const refused = makeEntry({ action: 'task.cancel', status: 404, outcome: 'not_found', subject: 'eve' });
      const later = makeEntry({ status: 429, outcome: 'quota_exceeded' });
      for (const e of [ok, refused, later]) await log.append(e);
      const targets = async (q: object) =>
        (await log.list('acme', { limit: 10, ...q })).items.map((e) => e.target);
      expect(await targets({ action: 'task.cancel' })).toEqual([refused.target]);
      expect(await targets({ subject: 'eve' })).toEqual([refused.target]);
      expect(await targets({ result: 'refused' })).toEqual([later.target, refused.target]);
      expect(await targets({ result: 'ok' })).toEqual([ok.target]);
      expect(await targets({ result: 429 })).toEqual([later.target]);
      expect(await targets({ since: refused.at })).toEqual([later.target, refused.target]);
      expect(await targets({ until: refused.at })).toEqual([refused.target, ok.target]);
      expect(await targets({ since: refused.at, until: refused.at })).toEqual([refused.target]);
    });

    it('pages with a cursor, each entry once, filters kept', async () => {
      const log = await make();
      const entries = Array.from({ length: 7 }, (_, i) => makeEntry({ status: i % 2 ? 403 : 201 }));
      for (const e of entries) await log.append(e);
      const seen: (string | null)[] = [];
      let cursor: string | undefined;
      do {
        const page = await log.list('acme', { limit: 2, result: 'ok', cursor });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((e) => e.target));
        cursor = page.nextCursor;
      } while (cursor);
      const expected = entries.filter((e) => e.status < 400).map((e) => e.target);
      expect(seen).toEqual(expected.reverse());
    });

    it('refuses a cursor it did not give with a ValidationError', async () => {
      const log = await make();
      await expect(log.list('acme', { limit: 2, cursor: 'bm90LWEtY3Vyc29y' })).rejects.toThrow(
        ValidationError,
      );
    });
  });
}
