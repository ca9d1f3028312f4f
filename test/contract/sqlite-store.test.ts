import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { makeTask } from '../support/tasks.js';
import { taskStoreContract } from './task-store.contract.js';

const freshFile = () => join(mkdtempSync(join(tmpdir(), 'autodev-store-')), 'autodev.db');

taskStoreContract('SQLite', async () => new SqliteTaskStore(freshFile()));

describe('SqliteTaskStore as the local queue', () => {
  it('claims the most urgent ready task once, across two connections to one file', async () => {
    // Arrange: two stores on one file stand for two server processes
    const file = freshFile();
    const a = new SqliteTaskStore(file);
    const b = new SqliteTaskStore(file);
    const low = makeTask({ priority: 'low' });
    const high = makeTask({ priority: 'high' });
    await a.create(low);
    await a.create(high);
    // Act
    const first = await a.claimNext('a', 10_000, new Date());
    const second = await b.claimNext('b', 10_000, new Date());
    const third = await a.claimNext('a', 10_000, new Date());
    // Assert
    expect(first?.id).toBe(high.id);
    expect(first?.lease?.owner).toBe('a');
    expect(second?.id).toBe(low.id);
    expect(third).toBeUndefined();
    expect((await a.listRunning()).map((t) => t.id).sort()).toEqual([high.id, low.id].sort());
  });

  it('does not claim a retrying task before its notBefore', async () => {
    const store = new SqliteTaskStore(freshFile());
    const later = Date.now() + 60_000;
    await store.create(makeTask({ status: 'retrying', notBefore: later }));
    expect(await store.claimNext('a', 1000, new Date())).toBeUndefined();
    expect(await store.nextWakeAt()).toBe(later);
    expect((await store.claimNext('a', 1000, new Date(later + 1)))?.status).toBe('running');
  });
});
