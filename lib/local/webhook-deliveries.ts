import type Database from 'better-sqlite3';
import type { DeliveryLog } from '../core/webhooks.js';
import { openDatabase } from './sqlite-file.js';

/** How long a delivery id is remembered. GitHub redelivers on request, within days. */
const DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000;

/**
 * Webhook delivery ids in a SQLite table (the local platform's database file, or its own): a
 * replay is detected by the primary key, atomically, also across processes sharing the file.
 */
export class SqliteDeliveryLog implements DeliveryLog {
  private readonly db: Database.Database;
  private readonly owned: boolean;
  private readonly insert: Database.Statement<[string, number]>;
  private readonly prune: Database.Statement<[number]>;
  private inserts = 0;

  constructor(
    fileOrDb: string | Database.Database,
    private readonly retentionMs = DEFAULT_RETENTION_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.owned = typeof fileOrDb === 'string';
    this.db = typeof fileOrDb === 'string' ? openDatabase(fileOrDb) : fileOrDb;
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL) WITHOUT ROWID',
    );
    this.insert = this.db.prepare('INSERT OR IGNORE INTO webhook_deliveries (id, seen_at) VALUES (?, ?)');
    this.prune = this.db.prepare('DELETE FROM webhook_deliveries WHERE seen_at < ?');
  }

  async seen(id: string): Promise<boolean> {
    const now = this.now();
    const fresh = this.insert.run(id, now).changes === 1;
    if (fresh && ++this.inserts % 1000 === 0) this.prune.run(now - this.retentionMs);
    return !fresh;
  }

  /** Forgets ids seen before `epochMs` (the platform's retention sweep). */
  pruneBefore(epochMs: number): number {
    return this.prune.run(epochMs).changes;
  }

  /** Forgets ids older than the retention period. */
  pruneNow(): number {
    return this.prune.run(this.now() - this.retentionMs).changes;
  }

  close(): void {
    if (this.owned) this.db.close();
  }
}
