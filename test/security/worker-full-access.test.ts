import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoRoleSettings } from '../../lib/aws/dynamo-role-settings.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { readWorkerEnv, runWorkerTask } from '../../lib/aws/worker-task.js';
import { transition } from '../../lib/core/lifecycle.js';
import { RoleSettingsService } from '../../lib/core/role-settings.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
import { prepareAttempt } from '../../lib/core/workflow.js';
import { resolveSandbox, type Sandbox } from '../../lib/worker/sandbox.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { FAKES, makeRemote } from '../support/local-platform.js';
import { makeTask } from '../support/tasks.js';

// not under /tmp: the sandbox has a /tmp of its own
const dir = mkdtempSync('/var/tmp/autodev-worker-full-access-');
chmodSync(dir, 0o755);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let roleSettings: DynamoRoleSettings;
let tableName: string;
let sandbox: Sandbox;
let outside: Server;
let outsideUrl: string;
let repo: string;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  roleSettings = new DynamoRoleSettings(ddb.client, tableName);
  repo = makeRemote(dir);
  mkdirSync(join(dir, 'ws'));
  // as the worker's entry resolves it: bubblewrap, the workspaces hidden
  sandbox = await resolveSandbox({ setting: 'on', hidden: [join(dir, 'ws')] });
  expect(sandbox.mode).toBe('bwrap');
  // a service on the machine's loopback that no sandboxed agent should reach
  outside = createServer((_req, res) => res.end('the machine network\n'));
  await new Promise<void>((r) => outside.listen(0, '127.0.0.1', () => r()));
  outsideUrl = `http://127.0.0.1:${(outside.address() as AddressInfo).port}/`;
}, 60_000);

afterAll(async () => {
  outside?.close();
  await ddb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs attempt 1 of a task of `tenant` and `role` in the Fargate worker; its log lines. */
async function runTask(tenant: string, role: string): Promise<string[]> {
  const task = makeTask({ tenant, role, repo, prompt: `look around [fake:fetch=${outsideUrl}]` });
  await store.create(task);
  const running = transition(task, 'running', {}, new Date());
  await store.put(running, 0);
  const prep = prepareAttempt({
    task: running,
    role: BUILT_IN_ROLES[role] ?? BUILT_IN_ROLES.backend,
    available: () => true,
    now: new Date(),
    leaseOwner: `${task.id}-1`,
  });
  await store.put(prep.task, running.version);
  const env = readWorkerEnv({
    AUTODEV_TASK_ID: task.id,
    AUTODEV_TENANT: tenant,
    AUTODEV_ATTEMPT: '1',
    TASKS_TABLE_NAME: tableName,
    AUTODEV_WORKSPACES: join(dir, 'ws'),
  });
  const report = await runWorkerTask({
    env,
    store,
    secrets: { ANTHROPIC_API_KEY: 'sk-ant-test' },
    baseEnv: { PATH: `${FAKES}:${process.env.PATH}` },
    signal: new AbortController().signal,
    sandbox,
    roleSettings,
  });
  expect(report?.ok).toBe(true);
  return (await store.readLogs(task.id, 0, 500)).lines.map((l) => l.text);
}
const fetchLine = (lines: string[]) => lines.find((l) => l.includes('fetch')) ?? lines.join('\n');

describe('full-access mode in the Fargate worker', () => {
  it("gives the machine's network to the agents of the role an admin turned it on for, in that tenant only", async () => {
    // Arrange: acme's admin turns full access on for devops (as the API Lambda does)
    const service = new RoleSettingsService(roleSettings, () => BUILT_IN_ROLES);
    await service.setFullAccess({ tenant: 'acme', role: 'admin', subject: 'alice' }, 'devops', true);
    // Act
    const full = await runTask('acme', 'devops');
    const otherRole = await runTask('acme', 'backend');
    const otherTenant = await runTask('globex', 'devops');
    // Assert
    expect(fetchLine(full)).toContain('the machine network');
    expect(full.some((l) => l.startsWith('full access: role devops') && l.includes('alice'))).toBe(true);
    // the others reach nothing but the model gateway
    expect(fetchLine(otherRole)).toContain('could not fetch');
    expect(fetchLine(otherTenant)).toContain('could not fetch');
    expect(otherRole.some((l) => l.startsWith('full access'))).toBe(false);
  }, 120_000);

  it('closes the network again once the admin turns it off', async () => {
    const service = new RoleSettingsService(roleSettings, () => BUILT_IN_ROLES);
    await service.setFullAccess({ tenant: 'acme', role: 'admin', subject: 'alice' }, 'devops', false);
    expect(fetchLine(await runTask('acme', 'devops'))).toContain('could not fetch');
  }, 60_000);
});
