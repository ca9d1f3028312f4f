import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { SqliteAuditLog } from '../../../lib/local/sqlite-audit.js';
import { PAGE_CACHE_KIB } from '../../../lib/local/sqlite-file.js';
import { SqliteScheduleStore } from '../../../lib/local/sqlite-schedules.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';
import { SqliteDeliveryLog } from '../../../lib/local/webhook-deliveries.js';

const dir = mkdtempSync(join(tmpdir(), 'autodev-sqlite-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('connections to the local platform file', () => {
  it('every adapter that opens the file gets the write-ahead log and a page cache of fixed size', () => {
    const file = join(dir, 'nested', 'autodev.db');
    const store = new SqliteTaskStore(file);
    const connections = [
      store.connection,
      // the other adapters keep their connection private: reach into each for the one it opened
      (new SqliteScheduleStore(file) as unknown as { db: typeof store.connection }).db,
      (new SqliteDeliveryLog(file) as unknown as { db: typeof store.connection }).db,
      (new SqliteAuditLog(file) as unknown as { db: typeof store.connection }).db,
    ];
    for (const db of connections) {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('cache_size', { simple: true })).toBe(-PAGE_CACHE_KIB);
      // 1 = NORMAL
      expect(db.pragma('synchronous', { simple: true })).toBe(1);
    }
    for (const db of connections) db.close();
  });
});
