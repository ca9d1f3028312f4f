import type Database from 'better-sqlite3';
import { Schedule, type ScheduleStore } from '../core/schedules.js';
import { openDatabase } from './sqlite-file.js';

interface Row {
  data: string;
}

/** Schedules in a `schedules` table of the local platform's SQLite file. */
export class SqliteScheduleStore implements ScheduleStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string) {
    this.db = openDatabase(file);
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS schedules (
         id TEXT PRIMARY KEY,
         tenant TEXT NOT NULL,
         data TEXT NOT NULL
       );
       CREATE INDEX IF NOT EXISTS schedules_tenant ON schedules (tenant, id);`,
    );
    this.stmts = {
      insert: this.db.prepare<[string, string, string]>(
        'INSERT INTO schedules (id, tenant, data) VALUES (?, ?, ?)',
      ),
      get: this.db.prepare<[string, string], Row>('SELECT data FROM schedules WHERE id = ? AND tenant = ?'),
      list: this.db.prepare<[string], Row>('SELECT data FROM schedules WHERE tenant = ? ORDER BY id'),
      all: this.db.prepare<[], Row>('SELECT data FROM schedules ORDER BY id'),
      delete: this.db.prepare<[string, string]>('DELETE FROM schedules WHERE id = ? AND tenant = ?'),
    };
  }

  async create(schedule: Schedule): Promise<void> {
    this.stmts.insert.run(schedule.id, schedule.tenant, JSON.stringify(schedule));
  }

  async get(tenant: string, id: string): Promise<Schedule | undefined> {
    const row = this.stmts.get.get(id, tenant);
    return row ? Schedule.parse(JSON.parse(row.data)) : undefined;
  }

  async list(tenant: string): Promise<Schedule[]> {
    return this.stmts.list.all(tenant).map((r) => Schedule.parse(JSON.parse(r.data)));
  }

  /** Every tenant's schedules (for the in-process scheduler). */
  async listAll(): Promise<Schedule[]> {
    return this.stmts.all.all().map((r) => Schedule.parse(JSON.parse(r.data)));
  }

  async delete(tenant: string, id: string): Promise<void> {
    this.stmts.delete.run(id, tenant);
  }

  close(): void {
    this.db.close();
  }
}
