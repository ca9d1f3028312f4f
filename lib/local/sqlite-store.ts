import type Database from 'better-sqlite3';
import { ConflictError, VersionConflictError } from '../core/errors.js';
import { PRIORITY_RANK } from '../core/fair-share.js';
import type {
  ClaimableTaskStore,
  ErasableTaskStore,
  IdempotencyClaim,
  ListQuery,
  LogLine,
  TaskErasure,
} from '../core/ports.js';
import type { ProviderState, ProviderStateStore } from '../core/provider-health.js';
import { TASK_STATUSES, type Task, type TaskStatus, TERMINAL_STATUSES } from '../core/schemas.js';
import type { ErasableTenantSpendStore } from '../core/tenant-spend.js';
import { openDatabase } from './sqlite-file.js';

/** Sorts after every task id (ids are ASCII, see ids.ts). */
const AFTER_EVERY_ID = '\uffff';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  status TEXT NOT NULL,
  role TEXT NOT NULL,
  priority_rank INTEGER NOT NULL,
  not_before INTEGER,
  version INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_tenant ON tasks (tenant, id);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (status, priority_rank, id);
-- a tenant's list by status (GET /v1/tasks?status=...), newest first, without reading its other tasks
CREATE INDEX IF NOT EXISTS tasks_tenant_status ON tasks (tenant, status, id);
CREATE INDEX IF NOT EXISTS tasks_heads ON tasks (status, tenant, role, priority_rank, id);
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  body_hash TEXT NOT NULL,
  task_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_batches (
  key TEXT NOT NULL,
  position INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  PRIMARY KEY (key, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
  task_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at TEXT NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provider_state (
  provider TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tenant_spend (
  tenant TEXT NOT NULL,
  day TEXT NOT NULL,
  usd REAL NOT NULL,
  PRIMARY KEY (tenant, day)
);
`;

interface Row {
  data: string;
}

/** `status IN (...)` of the finished statuses (constants, not input). */
const FINISHED = `status IN (${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;
/** Tasks deleted per transaction by the retention sweep: other writers wait at most one batch. */
const SWEEP_BATCH = 500;

/** What the retention sweep removed. */
export interface SweepResult {
  tasks: number;
  logLines: number;
  idempotencyKeys: number;
}

/** The task store on one SQLite file (WAL, so several processes may share it). */
export class SqliteTaskStore
  implements ClaimableTaskStore, ErasableTaskStore, ProviderStateStore, ErasableTenantSpendStore
{
  private readonly db: Database.Database;
  private readonly stmts;

  /** The store's connection, for adapters that write the same file from the same process. */
  get connection(): Database.Database {
    return this.db;
  }

  constructor(file: string) {
    this.db = openDatabase(file);
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      insert: db.prepare(
        'INSERT INTO tasks (id, tenant, status, role, priority_rank, not_before, version, data) VALUES (@id, @tenant, @status, @role, @priority_rank, @not_before, @version, @data)',
      ),
      get: db.prepare<[string, string], Row>('SELECT data FROM tasks WHERE id = ? AND tenant = ?'),
      getById: db.prepare<[string], Row>('SELECT data FROM tasks WHERE id = ?'),
      update: db.prepare(
        'UPDATE tasks SET status = @status, role = @role, priority_rank = @priority_rank, not_before = @not_before, version = @version, data = @data WHERE id = @id AND version = @expected',
      ),
      idemGet: db.prepare<[string, number], { body_hash: string; task_id: string }>(
        'SELECT body_hash, task_id FROM idempotency WHERE key = ? AND expires_at > ?',
      ),
      idemPut: db.prepare(
        'INSERT OR REPLACE INTO idempotency (key, body_hash, task_id, expires_at) VALUES (?, ?, ?, ?)',
      ),
      idemPurge: db.prepare('DELETE FROM idempotency WHERE expires_at <= ?'),
      // a batch's tasks under its key (the idempotency row names the first)
      batchGet: db.prepare<[string], { task_id: string }>(
        'SELECT task_id FROM idempotency_batches WHERE key = ? ORDER BY position',
      ),
      batchPut: db.prepare('INSERT INTO idempotency_batches (key, position, task_id) VALUES (?, ?, ?)'),
      batchOfKey: db.prepare('DELETE FROM idempotency_batches WHERE key = ?'),
      batchOrphans: db.prepare(
        'DELETE FROM idempotency_batches WHERE key NOT IN (SELECT key FROM idempotency)',
      ),
      ready: db.prepare<[number], Row>(
        `SELECT data FROM tasks WHERE status = 'queued' OR (status = 'retrying' AND not_before <= ?)
         ORDER BY priority_rank, id LIMIT 1`,
      ),
      // the first queued task of the next (tenant, role, priority) group: one index seek per group
      // (the id bound sorts after every task id, so the seek lands past the whole group at once)
      nextHead: db.prepare<
        [string, string, number, string],
        Row & { tenant: string; role: string; priority_rank: number }
      >(
        `SELECT tenant, role, priority_rank, data FROM tasks
         WHERE status = 'queued' AND (tenant, role, priority_rank, id) > (?, ?, ?, ?)
         ORDER BY tenant, role, priority_rank, id LIMIT 1`,
      ),
      retryDue: db.prepare<[number, number], Row>(
        `SELECT data FROM tasks WHERE status = 'retrying' AND not_before <= ? ORDER BY priority_rank, id LIMIT ?`,
      ),
      readyById: db.prepare<[string, number], Row>(
        `SELECT data FROM tasks WHERE id = ? AND (status = 'queued' OR (status = 'retrying' AND not_before <= ?))`,
      ),
      byStatus: db.prepare<[string], Row>('SELECT data FROM tasks WHERE status = ? ORDER BY id'),
      waiting: db.prepare<[number], Row>(
        "SELECT data FROM tasks WHERE status IN ('queued', 'retrying') ORDER BY id LIMIT ?",
      ),
      wake: db.prepare<[], { t: number | null }>(
        "SELECT MIN(not_before) AS t FROM tasks WHERE status = 'retrying'",
      ),
      counts: db.prepare<[], { status: string; n: number }>(
        'SELECT status, COUNT(*) AS n FROM tasks GROUP BY status',
      ),
      logMax: db.prepare<[string], { m: number | null }>('SELECT MAX(seq) AS m FROM logs WHERE task_id = ?'),
      logPut: db.prepare('INSERT INTO logs (task_id, seq, at, text) VALUES (?, ?, ?, ?)'),
      psGet: db.prepare<[string], Row>('SELECT data FROM provider_state WHERE provider = ?'),
      psAll: db.prepare<[], Row>('SELECT data FROM provider_state ORDER BY provider'),
      psInsert: db.prepare('INSERT OR IGNORE INTO provider_state (provider, version, data) VALUES (?, ?, ?)'),
      spendAdd: db.prepare(
        'INSERT INTO tenant_spend (tenant, day, usd) VALUES (?, ?, ?) ON CONFLICT (tenant, day) DO UPDATE SET usd = usd + excluded.usd',
      ),
      spendGet: db.prepare<[string, string], { usd: number }>(
        'SELECT usd FROM tenant_spend WHERE tenant = ? AND day = ?',
      ),
      psUpdate: db.prepare(
        'UPDATE provider_state SET version = ?, data = ? WHERE provider = ? AND version = ?',
      ),
      logRead: db.prepare<[string, number, number], LogLine>(
        'SELECT seq, at, text FROM logs WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
      // erasure and retention: `?` of json_each is a JSON array of task ids
      finishedOf: db.prepare<[string], { id: string; branch: number }>(
        `SELECT id, (json_extract(data, '$.branch') IS NOT NULL OR json_extract(data, '$.commit') IS NOT NULL
           OR json_extract(data, '$.pullRequest') IS NOT NULL) AS branch
         FROM tasks WHERE tenant = ? AND ${FINISHED}`,
      ),
      expired: db.prepare<[string, number], { id: string }>(
        `SELECT id FROM tasks WHERE ${FINISHED} AND json_extract(data, '$.updatedAt') < ? LIMIT ?`,
      ),
      logsOfIds: db.prepare<[string]>('DELETE FROM logs WHERE task_id IN (SELECT value FROM json_each(?))'),
      idemOfIds: db.prepare<[string]>(
        'DELETE FROM idempotency WHERE task_id IN (SELECT value FROM json_each(?))',
      ),
      // a tenant's keys are `<tenant>#<key>`; those whose task is gone (or never made) go with it
      idemOfTenant: db.prepare<[string, string]>(
        'DELETE FROM idempotency WHERE substr(key, 1, length(?)) = ? AND task_id NOT IN (SELECT id FROM tasks)',
      ),
      tasksOfIds: db.prepare<[string]>(
        `DELETE FROM tasks WHERE ${FINISHED} AND id IN (SELECT value FROM json_each(?))`,
      ),
    };
  }

  close(): void {
    this.db.close();
  }

  private row(task: Task) {
    return {
      id: task.id,
      tenant: task.tenant,
      status: task.status,
      role: task.role,
      priority_rank: PRIORITY_RANK[task.priority],
      not_before: task.notBefore ?? null,
      version: task.version,
      data: JSON.stringify(task),
    };
  }

  async create(task: Task, idem?: IdempotencyClaim): Promise<{ task: Task; created: boolean }> {
    const now = Date.now();
    return this.db
      .transaction(() => {
        if (idem) {
          const seen = this.stmts.idemGet.get(idem.key, now);
          if (seen) {
            if (seen.body_hash !== idem.bodyHash) {
              throw new ConflictError('This Idempotency-Key was used with a different request body.');
            }
            const earlier = this.stmts.getById.get(seen.task_id);
            if (earlier) return { task: JSON.parse(earlier.data) as Task, created: false };
          }
          this.stmts.idemPurge.run(now);
          this.stmts.idemPut.run(idem.key, idem.bodyHash, task.id, now + idem.ttlSeconds * 1000);
        }
        this.stmts.insert.run(this.row(task));
        return { task, created: true };
      })
      .immediate();
  }

  async createBatch(tasks: Task[], idem?: IdempotencyClaim): Promise<{ tasks: Task[]; created: boolean }> {
    const now = Date.now();
    return this.db
      .transaction(() => {
        if (idem) {
          const seen = this.stmts.idemGet.get(idem.key, now);
          if (seen) {
            if (seen.body_hash !== idem.bodyHash) {
              throw new ConflictError('This Idempotency-Key was used with a different request body.');
            }
            const earlier = this.stmts.batchGet
              .all(idem.key)
              .map((r) => this.stmts.getById.get(r.task_id))
              .filter((r): r is Row => r !== undefined)
              .map((r) => JSON.parse(r.data) as Task);
            if (earlier.length > 0) return { tasks: earlier, created: false };
          }
          this.stmts.idemPurge.run(now);
          this.stmts.batchOfKey.run(idem.key);
          this.stmts.idemPut.run(idem.key, idem.bodyHash, tasks[0]?.id ?? '', now + idem.ttlSeconds * 1000);
          for (const [i, t] of tasks.entries()) this.stmts.batchPut.run(idem.key, i, t.id);
        }
        for (const task of tasks) this.stmts.insert.run(this.row(task));
        return { tasks, created: true };
      })
      .immediate();
  }

  async get(tenant: string, id: string): Promise<Task | undefined> {
    const row = this.stmts.get.get(id, tenant);
    return row ? (JSON.parse(row.data) as Task) : undefined;
  }

  async getById(id: string): Promise<Task | undefined> {
    const row = this.stmts.getById.get(id);
    return row ? (JSON.parse(row.data) as Task) : undefined;
  }

  async list(tenant: string, q: ListQuery): Promise<{ items: Task[]; nextCursor?: string }> {
    const where = ['tenant = ?'];
    const args: (string | number)[] = [tenant];
    if (q.status) {
      where.push('status = ?');
      args.push(q.status);
    }
    if (q.role) {
      where.push('role = ?');
      args.push(q.role);
    }
    if (q.provider) {
      where.push("(json_extract(data, '$.provider') = ? OR json_extract(data, '$.requestedProvider') = ?)");
      args.push(q.provider, q.provider);
    }
    if (q.label) {
      where.push("EXISTS (SELECT 1 FROM json_each(tasks.data, '$.labels') WHERE value = ?)");
      args.push(q.label);
    }
    if (q.cursor) {
      where.push('id < ?');
      args.push(q.cursor);
    }
    args.push(q.limit + 1);
    const rows = this.db
      .prepare<(string | number)[], Row>(
        `SELECT data FROM tasks WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`,
      )
      .all(...args);
    const items = rows.slice(0, q.limit).map((r) => JSON.parse(r.data) as Task);
    return rows.length > q.limit ? { items, nextCursor: items[items.length - 1]?.id } : { items };
  }

  async put(task: Task, expectedVersion: number): Promise<void> {
    if (task.version !== expectedVersion + 1) {
      throw new Error(`put: version must be ${expectedVersion + 1}, got ${task.version}`);
    }
    const res = this.stmts.update.run({ ...this.row(task), expected: expectedVersion });
    if (res.changes !== 1) {
      throw new VersionConflictError(
        `Task ${task.id} changed meanwhile (expected version ${expectedVersion}).`,
      );
    }
  }

  async claimNext(owner: string, leaseMs: number, now: Date): Promise<Task | undefined> {
    return this.db
      .transaction(() => {
        const row = this.stmts.ready.get(now.getTime());
        return row ? this.claimRow(row, owner, leaseMs, now) : undefined;
      })
      .immediate();
  }

  async readyHeads(now: Date, maxRetrying = 1000): Promise<Task[]> {
    return this.db.transaction(() => {
      const out: Task[] = [];
      let key: [string, string, number, string] = ['', '', -1, AFTER_EVERY_ID];
      for (let row = this.stmts.nextHead.get(...key); row; row = this.stmts.nextHead.get(...key)) {
        out.push(JSON.parse(row.data) as Task);
        key = [row.tenant, row.role, row.priority_rank, AFTER_EVERY_ID];
      }
      for (const row of this.stmts.retryDue.all(now.getTime(), maxRetrying))
        out.push(JSON.parse(row.data) as Task);
      return out;
    })();
  }

  async claim(id: string, owner: string, leaseMs: number, now: Date): Promise<Task | undefined> {
    return this.db
      .transaction(() => {
        const row = this.stmts.readyById.get(id, now.getTime());
        return row ? this.claimRow(row, owner, leaseMs, now) : undefined;
      })
      .immediate();
  }

  private claimRow(row: Row, owner: string, leaseMs: number, now: Date): Task {
    const task = JSON.parse(row.data) as Task;
    const claimed: Task = {
      ...task,
      status: 'running',
      version: task.version + 1,
      updatedAt: now.toISOString(),
      notBefore: undefined,
      lease: { owner, expiresAt: now.getTime() + leaseMs },
    };
    this.stmts.update.run({ ...this.row(claimed), expected: task.version });
    return claimed;
  }

  async listRunning(): Promise<Task[]> {
    return this.stmts.byStatus.all('running').map((r) => JSON.parse(r.data) as Task);
  }

  /** Tasks waiting to run (queued or retrying), the oldest first, up to `limit` (the queue-age gauge). */
  async listWaiting(limit = 100): Promise<Task[]> {
    return this.stmts.waiting.all(limit).map((r) => JSON.parse(r.data) as Task);
  }

  async listBlocked(): Promise<Task[]> {
    return this.stmts.byStatus.all('blocked').map((r) => JSON.parse(r.data) as Task);
  }

  async nextWakeAt(): Promise<number | undefined> {
    return this.stmts.wake.get()?.t ?? undefined;
  }

  async countByStatus(): Promise<Record<TaskStatus, number>> {
    const out = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    for (const { status, n } of this.stmts.counts.all()) out[status as TaskStatus] = n;
    return out;
  }

  async getProviderState(provider: string): Promise<ProviderState | undefined> {
    const row = this.stmts.psGet.get(provider);
    return row ? (JSON.parse(row.data) as ProviderState) : undefined;
  }

  async putProviderState(state: ProviderState, expectedVersion: number): Promise<void> {
    const data = JSON.stringify(state);
    const res =
      expectedVersion < 0
        ? this.stmts.psInsert.run(state.provider, state.version, data)
        : this.stmts.psUpdate.run(state.version, data, state.provider, expectedVersion);
    if (res.changes !== 1)
      throw new VersionConflictError(`Provider state of ${state.provider} changed meanwhile.`);
  }

  /** The tenant's model spend per UTC day, added to as each model call is recorded. */
  async addTenantSpend(tenant: string, day: string, usd: number): Promise<void> {
    this.stmts.spendAdd.run(tenant, day, usd);
  }

  async tenantSpend(tenant: string, day: string): Promise<number> {
    return this.stmts.spendGet.get(tenant, day)?.usd ?? 0;
  }

  /** Erasure: the tenant's spend counters of every day. */
  async eraseTenantSpend(tenant: string): Promise<number> {
    return this.db.prepare('DELETE FROM tenant_spend WHERE tenant = ?').run(tenant).changes;
  }

  async listProviderStates(): Promise<ProviderState[]> {
    return this.stmts.psAll.all().map((r) => JSON.parse(r.data) as ProviderState);
  }

  async appendLogs(taskId: string, lines: string[], now: Date): Promise<void> {
    if (lines.length === 0) return;
    const at = now.toISOString();
    this.db
      .transaction(() => {
        let seq = this.stmts.logMax.get(taskId)?.m ?? 0;
        for (const text of lines) this.stmts.logPut.run(taskId, ++seq, at, text);
      })
      .immediate();
  }

  /**
   * Deletes the tenant's finished tasks with their logs and idempotency keys, in one transaction:
   * a task the executor claims meanwhile is running, so it is not among them.
   */
  async eraseTenant(tenant: string): Promise<TaskErasure> {
    return this.db
      .transaction(() => {
        const found = this.stmts.finishedOf.all(tenant);
        const ids = JSON.stringify(found.map((r) => r.id));
        const logLines = this.stmts.logsOfIds.run(ids).changes;
        const prefix = `${tenant}#`;
        const idempotencyKeys = this.stmts.idemOfIds.run(ids).changes;
        const tasks = this.stmts.tasksOfIds.run(ids).changes;
        const orphanKeys = this.stmts.idemOfTenant.run(prefix, prefix).changes;
        this.stmts.batchOrphans.run();
        return {
          tasks,
          logLines,
          idempotencyKeys: idempotencyKeys + orphanKeys,
          branches: found.filter((r) => r.branch).length,
        };
      })
      .immediate();
  }

  /**
   * The retention sweep: deletes tasks that finished before `before` (ISO time) with their logs and
   * idempotency keys, and idempotency keys past their time to live; a batch per transaction.
   */
  sweepFinishedBefore(before: string): SweepResult {
    const out: SweepResult = { tasks: 0, logLines: 0, idempotencyKeys: 0 };
    for (;;) {
      const batch = this.db
        .transaction(() => {
          const ids = this.stmts.expired.all(before, SWEEP_BATCH).map((r) => r.id);
          const json = JSON.stringify(ids);
          out.logLines += this.stmts.logsOfIds.run(json).changes;
          out.idempotencyKeys += this.stmts.idemOfIds.run(json).changes;
          out.tasks += this.stmts.tasksOfIds.run(json).changes;
          return ids.length;
        })
        .immediate();
      if (batch < SWEEP_BATCH) break;
    }
    out.idempotencyKeys += this.stmts.idemPurge.run(Date.now()).changes;
    this.stmts.batchOrphans.run();
    return out;
  }

  async readLogs(
    taskId: string,
    afterSeq: number,
    limit: number,
  ): Promise<{ lines: LogLine[]; lastSeq: number }> {
    const lines = this.stmts.logRead.all(taskId, afterSeq, limit);
    return { lines, lastSeq: lines.length ? (lines[lines.length - 1] as LogLine).seq : afterSeq };
  }
}
