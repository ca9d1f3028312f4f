import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { reap } from '../../../lib/aws/reaper.js';
import { createTaskTableInput } from '../../../lib/aws/task-table.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../support/dynamodb-local.js';
import { FAKES, makeRemote, ROOT, tempDir } from '../../support/local-platform.js';
import { bundleWorkerEntry, preparedTask } from '../../support/worker.js';

let ddb: DynamoDbLocal;
/** The ECS task metadata endpoint (v4) as Fargate serves it to the container, on 127.0.0.1. */
let metadata: Server;
let metadataUri = '';
const WORKER_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/autodev/5f0c2a9e8b7d4c6a';
let store: DynamoTaskStore;
let tableName: string;
const ENTRY = join(ROOT, '.cache/worker-lease-test/entry.mjs');

beforeAll(async () => {
  metadata = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(req.url === '/v4/worker/task' ? JSON.stringify({ TaskARN: WORKER_ARN, Family: 'worker' }) : '{}');
  });
  await new Promise<void>((r) => metadata.listen(0, '127.0.0.1', r));
  metadataUri = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}/v4/worker`;
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  await bundleWorkerEntry(ENTRY);
}, 60_000);
afterAll(async () => {
  metadata?.close();
  await ddb?.stop();
});

/** The repository asks for a review round by the fake codex after the fake claude's change. */
const REVIEWED_REPO = {
  'README.md': '# shop\n',
  '.autodev.yml': ['review:', '  provider: codex', '  rounds: 0', ''].join('\n'),
};

/** Runs the worker entry point as the image does, calling the reaper every 200 ms until it exits. */
async function runWorkerUnderReaper(
  task: Task,
  workspaces: string,
  heartbeat: { everyMs: number; leaseSeconds: number },
): Promise<{ code: number | null; out: string; reaped: boolean }> {
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
      AUTODEV_HEARTBEAT_MS: String(heartbeat.everyMs),
      AUTODEV_LEASE_SECONDS: String(heartbeat.leaseSeconds),
      ECS_CONTAINER_METADATA_URI_V4: metadataUri,
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
  const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  let reaped = false;
  const roles = BUILT_IN_ROLES as Record<string, (typeof BUILT_IN_ROLES)[keyof typeof BUILT_IN_ROLES]>;
  // the prepare step's lease covers the worker's start (here 1 s, however slow the machine): the
  // reaper starts once the worker's first heartbeat has renewed it
  const prepared = task.lease?.expiresAt;
  while (!done && (await store.getById(task.id))?.lease?.expiresAt === prepared) {
    await new Promise((r) => setTimeout(r, 20));
  }
  while (!done) {
    await reap({ store, notifier: { taskReady: async () => undefined }, roles });
    // whether the reaper took this task from its worker while the worker still ran
    if (!done && (await store.getById(task.id))?.status !== 'running') reaped = true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { code: await exited, out, reaped };
}

describe('the Fargate worker holds its lease while it works', () => {
  it('renews the lease through a long agent run and the review round: the reaper never takes the attempt', async () => {
    // Arrange: a 1 s lease, an agent run of 3 s, then a review round
    const dir = tempDir('autodev-lease-');
    const remote = makeRemote(dir, REVIEWED_REPO);
    const task = await preparedTask(
      store,
      'Add notes [fake:sleep=3000] [fake:edit=NOTES.md] [fake:review=approve]',
      `file://${remote}`,
      1000,
    );
    const started = Date.now();
    // Act
    const { code, out, reaped } = await runWorkerUnderReaper(task, join(dir, 'ws'), {
      everyMs: 200,
      leaseSeconds: 1,
    });
    // Assert: the attempt outlived its first lease, was never reaped, and ran once
    expect({ code, reaped }).toEqual({ code: 0, reaped: false });
    expect(Date.now() - started).toBeGreaterThan(3000);
    const after = await store.getById(task.id);
    expect(after?.status).toBe('running');
    expect(after?.attempts.map((a) => a.outcome)).toEqual(['running']);
    // the first heartbeat recorded the worker's ECS task, which cancel stops
    expect(after?.attempts[0]?.workerRef).toBe(WORKER_ARN);
    expect(after?.lease?.expiresAt).toBeGreaterThan(task.lease?.expiresAt ?? Number.POSITIVE_INFINITY);
    const report = (await store.getAttemptReport(task.id, 1)) as { ok: boolean; review?: unknown };
    expect({ report, out }).toMatchObject({ report: { ok: true, review: expect.anything() } });
  });

  it('without renewals the same attempt is reaped and re-queued, and the worker stops on losing it', async () => {
    // Arrange: the same task, heartbeats too rare to keep the 1 s lease
    const dir = tempDir('autodev-lease-');
    const remote = makeRemote(dir, REVIEWED_REPO);
    const task = await preparedTask(
      store,
      'Add notes [fake:sleep=3000] [fake:edit=NOTES.md]',
      `file://${remote}`,
      1000,
    );
    // Act
    const { code, reaped } = await runWorkerUnderReaper(task, join(dir, 'ws'), {
      everyMs: 2000,
      leaseSeconds: 1,
    });
    // Assert
    expect({ code, reaped }).toEqual({ code: 0, reaped: true });
    const after = await store.getById(task.id);
    expect(after?.status).toBe('queued');
    expect(after?.attempts.map((a) => a.outcome)).toEqual(['abandoned']);
    const logs = await store.readLogs(task.id, 0, 1000);
    expect(logs.lines.some((l) => l.text.includes('lost its lease'))).toBe(true);
  });
});
