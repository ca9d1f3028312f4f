import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { SqliteScheduleStore } from '../../lib/local/sqlite-schedules.js';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { makeSchedule, scheduleStoreContract } from './schedule-store.contract.js';

const freshFile = () => join(mkdtempSync(join(tmpdir(), 'autodev-schedules-')), 'autodev.db');

scheduleStoreContract('SQLite', async () => new SqliteScheduleStore(freshFile()));

describe('SqliteScheduleStore beyond the port', () => {
  it('shares the task database file and lists every tenant for the scheduler', async () => {
    const file = freshFile();
    const tasks = new SqliteTaskStore(file);
    const store = new SqliteScheduleStore(file);
    const a = makeSchedule();
    const b = makeSchedule({ tenant: 'globex' });
    await store.create(a);
    await store.create(b);
    const reopened = new SqliteScheduleStore(file);
    expect((await reopened.listAll()).map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
    store.close();
    reopened.close();
    tasks.close();
  });
});
