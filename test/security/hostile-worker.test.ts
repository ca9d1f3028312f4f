import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { FAKES, gitIn, makeRemote, ROOT, tempDir } from '../support/local-platform.js';
import { bundleWorkerEntry, preparedTask } from '../support/worker.js';

interface Attempted {
  name: string;
  achieved: boolean;
  how: string;
}

const ENTRY = join(ROOT, '.cache/worker-security/entry.mjs');
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let tableName: string;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  await bundleWorkerEntry(ENTRY);
}, 60_000);
afterAll(async () => ddb?.stop());

describe.each(['uid', 'on'])('a hostile agent in the Fargate worker (AUTODEV_SANDBOX=%s)', (mode) => {
  const dir = tempDir('autodev-worker-hostile-');
  const workspaces = join(dir, 'ws');
  const canary = `canary-${randomBytes(8).toString('hex')}`;
  const hookMarker = join(dir, 'planted-program-ran');
  let recorded: { uid: number; results: Attempted[] };
  let exit: { code: number | null; signal: NodeJS.Signals | null; out: string };
  let report: { ok: boolean; commit?: string } | undefined;
  let remote: string;

  beforeAll(async () => {
    // Arrange: the hostile fake as the image's `claude`, in a folder any user may read
    remote = makeRemote(dir);
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    chmodSync(dir, 0o755);
    symlinkSync(join(FAKES, '..', 'hostile-claude'), join(bin, 'claude'));
    const plan = {
      home: workspaces,
      workspaces: join(workspaces, 'worktrees'),
      mirrors: join(workspaces, 'mirrors'),
      serverPid: 'parent',
      canary,
      hookMarker,
    };
    const task = await preparedTask(
      store,
      `Probe [hostile:${Buffer.from(JSON.stringify(plan)).toString('base64')}]`,
      `file://${remote}`,
    );
    // Act: the worker as ECS runs it, the credentials endpoint's URI and AWS keys in its environment
    exit = await new Promise((resolve) => {
      const proc = spawn(process.execPath, [ENTRY], {
        env: {
          PATH: `${bin}:${process.env.PATH}`,
          AWS_REGION: 'eu-west-1',
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: `local-${canary}`,
          AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: `/v2/credentials/${canary}`,
          AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint,
          TASKS_TABLE_NAME: tableName,
          AUTODEV_TASK_ID: task.id,
          AUTODEV_TENANT: task.tenant,
          AUTODEV_ATTEMPT: '1',
          AUTODEV_WORKSPACES: workspaces,
          AUTODEV_SANDBOX: mode,
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
      proc.on('exit', (code, signal) => resolve({ code, signal, out }));
    });
    report = (await store.getAttemptReport(task.id, 1)) as typeof report;
    if (process.env.SHOW_HOSTILE) console.log(exit.out, JSON.stringify(report));
    // what it recorded: from the pushed branch, or (when it stopped the worker) from its worktree
    const worktrees = join(workspaces, 'worktrees');
    const left = readdirSync(worktrees).find((n) => n.startsWith(task.id)) as string;
    recorded = JSON.parse(
      report?.commit
        ? gitIn(dir, ['--git-dir', remote, 'show', `${report.commit}:HOSTILE.json`])
        : readFileSync(join(worktrees, left, task.id, 'HOSTILE.json'), 'utf8'),
    );
  }, 120_000);

  const achieved = (pattern: RegExp) =>
    recorded.results
      .filter((r) => pattern.test(r.name) && r.achieved && r.how !== 'capability')
      .map((r) => `${r.name}: ${r.how}`);

  it('runs the agent as the agent user, and the attempt ends normally', () => {
    expect({ code: exit.code, ok: report?.ok }).toEqual({ code: 0, ok: true });
    expect(recorded.uid).toBe(10002);
  });

  it("cannot read the supervisor's environment: AWS keys, the credentials endpoint's URI", () => {
    expect(achieved(/environ|canary/)).toEqual([]);
  });

  it('cannot signal the supervisor', () => {
    expect(achieved(/SIGKILL/)).toEqual([]);
    expect(exit.signal).toBeNull();
  });

  it('changes nothing of the mirror or of its own git dir, and git still reads', () => {
    expect(achieved(/plant|write|\.git/)).toEqual([]);
    expect(existsSync(hookMarker)).toBe(false);
    expect(recorded.results.find((r) => r.how === 'capability')?.achieved).toBe(true);
  });
});
