import type Database from 'better-sqlite3';
import type { AuditEntry, AuditQuery, NewAuditEntry } from '../core/audit.js';
import { ValidationError } from '../core/errors.js';
import type { ErasableAuditLog } from '../core/ports.js';
import { openDatabase } from './sqlite-file.js';

interface Row {
  seq: number;
  at: string;
  tenant: string | null;
  subject: string | null;
  action: string;
  target: string | null;
  status: number;
  outcome: string;
  request_id: string;
  method: string;
  path: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  tenant TEXT,
  subject TEXT,
  action TEXT NOT NULL,
  target TEXT,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  request_id TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log (tenant, seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_erasures (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  before TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_erasures_no_update BEFORE UPDATE ON audit_erasures
BEGIN SELECT RAISE(ABORT, 'audit_erasures is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_erasures_no_delete BEFORE DELETE ON audit_erasures
BEGIN SELECT RAISE(ABORT, 'audit_erasures is append-only'); END;
DROP TRIGGER IF EXISTS audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_erasures e WHERE e.tenant = OLD.tenant AND OLD.at < e.before)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
`;

const toEntry = (r: Row): AuditEntry => ({
  id: String(r.seq),
  at: r.at,
  tenant: r.tenant,
  subject: r.subject,
  action: r.action,
  target: r.target,
  status: r.status,
  outcome: r.outcome,
  requestId: r.request_id,
  method: r.method,
  path: r.path,
});

/**
 * The audit trail in its own SQLite table. The adapter inserts and reads; triggers make the table
 * itself refuse an UPDATE, and a DELETE of any entry that no recorded erasure covers: a tenant's
 * erasure first appends (tenant, before) to `audit_erasures` (itself append-only), and only that
 * tenant's entries older than `before` may then be deleted.
 */
export class SqliteAuditLog implements ErasableAuditLog {
  private readonly db: Database.Database;
  private readonly owned: boolean;
  private readonly insert: Database.Statement;
  private readonly erasure: Database.Statement<[string, string, string]>;
  private readonly eraseEntries: Database.Statement<[string, string]>;

  /**
   * On a file of its own connection, or on a connection the caller shares (the task store's: one
   * connection writing both avoids each invalidating the other's page cache on every request).
   */
  constructor(fileOrConnection: string | Database.Database) {
    this.owned = typeof fileOrConnection === 'string';
    // as durable as the tasks it records: the store's settings, no fsync per entry in WAL mode
    this.db = typeof fileOrConnection === 'string' ? openDatabase(fileOrConnection) : fileOrConnection;
    this.db.exec(SCHEMA);
    this.insert = this.db.prepare(
      `INSERT INTO audit_log (at, tenant, subject, action, target, status, outcome, request_id, method, path)
       VALUES (@at, @tenant, @subject, @action, @target, @status, @outcome, @requestId, @method, @path)`,
    );
    this.erasure = this.db.prepare('INSERT INTO audit_erasures (tenant, before, at) VALUES (?, ?, ?)');
    this.eraseEntries = this.db.prepare('DELETE FROM audit_log WHERE tenant = ? AND at < ?');
  }

  async eraseBefore(tenant: string, before: string): Promise<number> {
    return this.db
      .transaction(() => {
        this.erasure.run(tenant, before, new Date().toISOString());
        return this.eraseEntries.run(tenant, before).changes;
      })
      .immediate();
  }

  async append(entry: NewAuditEntry): Promise<void> {
    this.insert.run(entry);
  }

  async list(tenant: string, q: AuditQuery): Promise<{ items: AuditEntry[]; nextCursor?: string }> {
    const where = ['tenant = ?'];
    const args: (string | number)[] = [tenant];
    if (q.cursor !== undefined) {
      if (!/^\d{1,15}$/.test(q.cursor)) {
        throw new ValidationError('cursor is not one this API gave.', [
          { field: 'cursor', message: 'malformed' },
        ]);
      }
      where.push('seq < ?');
      args.push(Number(q.cursor));
    }
    if (q.action !== undefined) {
      where.push('action = ?');
      args.push(q.action);
    }
    if (q.subject !== undefined) {
      where.push('subject = ?');
      args.push(q.subject);
    }
    if (q.result === 'ok') where.push('status < 400');
    else if (q.result === 'refused') where.push('status >= 400');
    else if (q.result !== undefined) {
      where.push('status = ?');
      args.push(q.result);
    }
    if (q.since !== undefined) {
      where.push('at >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('at <= ?');
      args.push(q.until);
    }
    const rows = this.db
      .prepare(`SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`)
      .all(...args, q.limit + 1) as Row[];
    const items = rows.slice(0, q.limit).map(toEntry);
    return rows.length > q.limit ? { items, nextCursor: items[items.length - 1]?.id } : { items };
  }

  close(): void {
    if (this.owned) this.db.close();
  }
}
