import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../../lib/aws/task-table.js';
import type { Task } from '../../../lib/core/schemas.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../support/dynamodb-local.js';
import { FAKES, gitIn, makeRemote, ROOT, tempDir } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';
import { bundleWorkerEntry, preparedTask } from '../../support/worker.js';

let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let tableName: string;
const ENTRY = join(ROOT, '.cache/worker-test/entry.mjs');

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  await bundleWorkerEntry(ENTRY);
}, 60_000);
afterAll(async () => ddb?.stop());

function runWorker(task: Task, workspaces: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [ENTRY], {
      env: {
        PATH: `${FAKES}:${process.env.PATH}`,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint,
        TASKS_TABLE_NAME: tableName,
        AUTODEV_TASK_ID: task.id,
        AUTODEV_TENANT: task.tenant,
        AUTODEV_ATTEMPT: '1',
        AUTODEV_WORKSPACES: workspaces,
        HOME: workspaces,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += String(d);
    });
    proc.stderr.on('data', (d) => {
      out += String(d);
    });
    proc.on('exit', (code) => resolve({ code, out }));
  });
}

describe('worker container entry point (as a process)', () => {
  it('runs the attempt, pushes the branch and stores the report for the record step', async () => {
    // Arrange
    const dir = tempDir('autodev-worker-');
    const remote = makeRemote(dir);
    const task = await preparedTask(store, 'Write notes [fake:edit=NOTES.md]', `file://${remote}`);
    // Act
    const { code, out } = await runWorker(task, join(dir, 'ws'));
    // Assert
    expect({ code, out }).toMatchObject({ code: 0 });
    const report = (await store.getAttemptReport(task.id, 1)) as {
      ok: boolean;
      branch?: string;
      commit?: string;
    };
    expect(report).toMatchObject({ ok: true, branch: `autodev/${task.id}` });
    expect(gitIn(dir, ['--git-dir', remote, 'rev-parse', `autodev/${task.id}`]).trim()).toBe(report.commit);
    const logs = await store.readLogs(task.id, 0, 1000);
    expect(logs.lines.some((l) => l.text.includes('attempt 1 reported: ok'))).toBe(true);
  });

  it('reports a classified provider failure and still exits 0', async () => {
    const dir = tempDir('autodev-worker-');
    const remote = makeRemote(dir);
    const task = await preparedTask(store, 'Try [fake:rate_limit]', `file://${remote}`);
    const { code, out } = await runWorker(task, join(dir, 'ws'));
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(await store.getAttemptReport(task.id, 1)).toMatchObject({ ok: false, errorClass: 'rate_limit' });
  });

  it('does nothing for an attempt the task is no longer running', async () => {
    const dir = tempDir('autodev-worker-');
    const task = makeTask({ status: 'cancelled' });
    await store.create(task);
    const { code, out } = await runWorker(task, join(dir, 'ws'));
    expect(code).toBe(0);
    expect(out).toContain('no longer running');
    expect(await store.getAttemptReport(task.id, 1)).toBeUndefined();
  });
});
