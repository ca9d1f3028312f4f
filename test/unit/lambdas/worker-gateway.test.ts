import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../../lib/aws/task-table.js';
import { recordStep } from '../../../lib/aws/workflow-steps.js';
import { priceCall, tokenPriceFor } from '../../../lib/core/metering.js';
import { admitProvider } from '../../../lib/core/provider-health.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { spendDay } from '../../../lib/core/tenant-spend.js';
import { MINI_CLAUDE } from '../../gateway/mini-claude.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../support/dynamodb-local.js';
import { gitIn, makeRemote, ROOT, tempDir } from '../../support/local-platform.js';
import { type LocalSecretsManager, startSecretsManager } from '../../support/secrets-manager.js';
import { type ScriptedUpstream, type Step, startScriptedUpstream } from '../../support/upstreams.js';
import { bundleWorkerEntry, preparedTask } from '../../support/worker.js';

/**
 * The Fargate worker's supervisor runs the model gateway beside the attempt: the worker process as
 * the image runs it, its provider secret from a Secrets Manager endpoint on the loopback, DynamoDB
 * Local, Claude Code's stand-in (mini-claude) as the agent, and a scripted Anthropic upstream.
 */

const REAL_KEY = `sk-ant-real-${randomBytes(8).toString('hex')}`;
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:provider-keys-AbCdEf';
const MODEL = 'claude-sonnet-4-5-20250929';
const EDIT: Step = {
  kind: 'tool_call',
  name: 'write_file',
  args: { path: 'NOTES.md', text: 'written through the worker gateway\n' },
  usage: { input: 1000, output: 50 },
};
const ANSWER: Step = {
  kind: 'answer',
  text: 'Wrote NOTES.md.',
  usage: { input: 2000, output: 300, cacheRead: 5000 },
};
const ENTRY = join(ROOT, '.cache/worker-gateway/entry.mjs');

function cost(step: Step): number {
  if (step.kind !== 'tool_call' && step.kind !== 'answer') return 0;
  const u = step.usage;
  const tokens = {
    inputTokens: u.input + (u.cacheRead ?? 0),
    cachedInputTokens: u.cacheRead ?? 0,
    cacheWriteTokens: 0,
    outputTokens: u.output,
  };
  return priceCall(tokens, tokenPriceFor(MODEL));
}

let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let tableName: string;
let upstream: ScriptedUpstream;
let secrets: LocalSecretsManager;
let bin: string;
let shared: string;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  await bundleWorkerEntry(ENTRY);
  upstream = await startScriptedUpstream({ protocol: 'anthropic', script: [{ kind: 'hang' }] });
  // the provider secret holds the real key and the upstream the gateway forwards to
  secrets = await startSecretsManager({
    [SECRET_ARN]: { ANTHROPIC_API_KEY: REAL_KEY, ANTHROPIC_BASE_URL: upstream.baseUrl },
  });
  const dir = tempDir('autodev-worker-gw-');
  chmodSync(dir, 0o755);
  bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'claude'), MINI_CLAUDE);
  chmodSync(join(bin, 'claude'), 0o755);
  // where the agent (another user) leaves a copy of its environment
  shared = join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
}, 60_000);

afterAll(async () => {
  await upstream?.close();
  await secrets?.close();
  await ddb?.stop();
});

function runWorker(
  task: Task,
  extra: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const workspaces = join(tempDir('autodev-worker-gw-ws-'), 'ws');
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [ENTRY], {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
        PROVIDER_SECRET_ARN: SECRET_ARN,
        TASKS_TABLE_NAME: tableName,
        AUTODEV_TASK_ID: task.id,
        AUTODEV_TENANT: task.tenant,
        AUTODEV_ATTEMPT: '1',
        AUTODEV_WORKSPACES: workspaces,
        // the user switch without bubblewrap: the agent may write the shared folder
        AUTODEV_SANDBOX: 'uid',
        HOME: workspaces,
        ...extra,
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

interface StoredReport {
  ok: boolean;
  errorClass?: string;
  fatalCode?: string;
  retryAfterMs?: number;
  commit?: string;
  usage: { inputTokens: number; outputTokens: number; costUsd: number };
  calls?: {
    model: string;
    inputTokens: number;
    cachedInputTokens: number;
    outputTokens: number;
    status: number;
  }[];
}

describe('the model gateway in the Fargate worker', () => {
  it("meters the agent's calls into the attempt record, and the real key never reaches the agent", async () => {
    // Arrange
    upstream.setScript([EDIT, ANSWER]);
    const dir = tempDir('autodev-worker-gw-');
    const remote = makeRemote(dir);
    const environ = join(shared, `environ-${randomBytes(4).toString('hex')}`);
    const task = await preparedTask(store, `Write the notes [envdump=${environ}]`, `file://${remote}`);
    // Act
    const { code, out } = await runWorker(task);
    const report = (await store.getAttemptReport(task.id, 1)) as StoredReport;
    await recordStep(
      { store, roles: BUILT_IN_ROLES, available: () => true },
      {
        taskId: task.id,
        tenant: task.tenant,
        executionName: `${task.id}-1`,
        attempt: 1,
      },
    );
    const recorded = await store.getById(task.id);
    // Assert: the usage is the ledger's (the CLI itself reported none)
    expect({ code, ok: report.ok }).toEqual({ code: 0, ok: true });
    expect(
      report.calls?.map((c) => [c.model, c.inputTokens, c.cachedInputTokens, c.outputTokens, c.status]),
    ).toEqual([
      [MODEL, 1000, 0, 50, 200],
      [MODEL, 7000, 5000, 300, 200],
    ]);
    expect(report.usage.inputTokens).toBe(8000);
    expect(report.usage.outputTokens).toBe(350);
    expect(report.usage.costUsd).toBeCloseTo(cost(EDIT) + cost(ANSWER), 6);
    // the ledger lands in the attempt on the task item in DynamoDB
    expect(recorded?.status).toBe('succeeded');
    expect(recorded?.attempts[0]?.calls).toHaveLength(2);
    expect(recorded?.usage.costUsd).toBeCloseTo(cost(EDIT) + cost(ANSWER), 6);
    // the agent had the session credential and the gateway's loopback address, never the key
    const agentEnv = readFileSync(environ, 'utf8').split('\0');
    expect(agentEnv.join('\n')).not.toContain(REAL_KEY);
    expect(agentEnv.find((e) => e.startsWith('ANTHROPIC_API_KEY='))).toMatch(/^ANTHROPIC_API_KEY=autodev-/);
    expect(agentEnv.find((e) => e.startsWith('ANTHROPIC_BASE_URL='))).toMatch(
      /^ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:\d+$/,
    );
    expect(agentEnv.find((e) => e.startsWith('ANTHROPIC_BASE_URL='))).not.toContain(upstream.baseUrl);
    // the upstream got the real key; nothing of it in the logs or the worker's output
    expect(upstream.requests.map((r) => r.headers['x-api-key'])).toEqual([REAL_KEY, REAL_KEY]);
    const logs = (await store.readLogs(task.id, 0, 1000)).lines.map((l) => l.text).join('\n');
    expect(logs).toContain('model call');
    expect(logs).not.toContain(REAL_KEY);
    expect(out).not.toContain(REAL_KEY);
    expect(gitIn(dir, ['--git-dir', remote, 'show', `${report.commit}:NOTES.md`])).toBe(
      'written through the worker gateway\n',
    );
  }, 60_000);

  it("holds the tenant to its daily budget from the worker's gateway, counting the spend in DynamoDB", async () => {
    // Arrange: the tenant's usdPerDay is half of the first call's cost
    upstream.setScript([EDIT, ANSWER]);
    const remote = makeRemote(tempDir('autodev-worker-gw-'));
    const task = await preparedTask(store, 'Write the notes', `file://${remote}`);
    const before = await store.tenantSpend(task.tenant, spendDay(new Date()));
    // Act
    const { code } = await runWorker(task, {
      AUTODEV_QUOTAS: JSON.stringify({ [task.tenant]: { usdPerDay: before + cost(EDIT) / 2 } }),
    });
    // Assert
    const report = (await store.getAttemptReport(task.id, 1)) as StoredReport;
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: false, fatalCode: 'budget_exceeded' });
    expect(upstream.requests).toHaveLength(1);
    expect((await store.tenantSpend(task.tenant, spendDay(new Date()))) - before).toBeCloseTo(cost(EDIT), 6);
  }, 60_000);

  // last: claude stays rate-limited in the table for ten minutes
  it("puts a rate limit into the provider's health in DynamoDB before the attempt ends", async () => {
    // Arrange
    upstream.setScript([{ kind: 'error', status: 429, headers: { 'retry-after': '600' } }]);
    const remote = makeRemote(tempDir('autodev-worker-gw-'));
    const task = await preparedTask(store, 'Write the notes', `file://${remote}`);
    const started = Date.now();
    // Act
    const { code } = await runWorker(task);
    // Assert: the attempt ended within seconds, and no attempt is admitted on claude until the reset
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    const report = (await store.getAttemptReport(task.id, 1)) as StoredReport;
    expect(report).toMatchObject({ ok: false, errorClass: 'rate_limit' });
    expect(report.retryAfterMs).toBeGreaterThan(580_000);
    const admission = await admitProvider(store, 'claude', Date.now());
    expect(admission).toMatchObject({ ok: false, reason: 'rate_limited' });
    expect(admission.ok ? 0 : admission.retryAfterMs).toBeGreaterThan(580_000);
  }, 60_000);
});
