import type Database from 'better-sqlite3';
import type { RoleSetting, RoleSettingsStore } from '../core/role-settings.js';

interface Row {
  tenant: string;
  role: string;
  full_access: number;
  updated_by: string;
  updated_at: string;
}

/** Role settings (full access) per tenant, in a table of the task store's SQLite file. */
export class SqliteRoleSettings implements RoleSettingsStore {
  private readonly getStmt;
  private readonly putStmt;

  constructor(db: Database.Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS role_settings (
      tenant TEXT NOT NULL,
      role TEXT NOT NULL,
      full_access INTEGER NOT NULL,
      updated_by TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (tenant, role)
    ) WITHOUT ROWID`);
    this.getStmt = db.prepare<[string, string], Row>(
      'SELECT * FROM role_settings WHERE tenant = ? AND role = ?',
    );
    this.putStmt = db.prepare(
      `INSERT INTO role_settings (tenant, role, full_access, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (tenant, role) DO UPDATE SET full_access = excluded.full_access,
         updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
    );
  }

  async get(tenant: string, role: string): Promise<RoleSetting | undefined> {
    const row = this.getStmt.get(tenant, role);
    return row
      ? {
          tenant: row.tenant,
          role: row.role,
          fullAccess: row.full_access === 1,
          updatedBy: row.updated_by,
          updatedAt: row.updated_at,
        }
      : undefined;
  }

  async put(s: RoleSetting): Promise<void> {
    this.putStmt.run(s.tenant, s.role, s.fullAccess ? 1 : 0, s.updatedBy, s.updatedAt);
  }
}
