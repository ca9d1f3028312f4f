import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Each connection's page cache, in KiB: SQLite's own default. better-sqlite3 builds SQLite with
 * 16 MiB, which a connection fills as the file grows; at 10,000 tasks that was most of the
 * server's growth in memory. Pages not cached are read from the kernel's page cache.
 */
export const PAGE_CACHE_KIB = 2000;

/**
 * A connection to the local platform's SQLite file, set up the same way by every adapter that
 * opens one: write-ahead log, no fsync per commit (durable at each checkpoint), a wait for the
 * write lock, a page cache of fixed size.
 */
export function openDatabase(file: string): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  return db;
}
