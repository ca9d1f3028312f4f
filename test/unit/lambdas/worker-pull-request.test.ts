import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../../lib/aws/task-table.js';
import { readWorkerEnv, runWorkerTask } from '../../../lib/aws/worker-task.js';
import { transition } from '../../../lib/core/lifecycle.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import { prepareAttempt } from '../../../lib/core/workflow.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../support/dynamodb-local.js';
import { type ForgeServer, startForgeServer } from '../../support/forge-server.js';
import { type GitHttpServer, startGitHttpServer } from '../../support/git-http-server.js';
import { FAKES, gitIn, makeRemote, tempDir } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';

const TOKEN = 'ghe-token-for-tests';
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let git: GitHttpServer;
let forge: ForgeServer;
let dir: string;
let tableName: string;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  dir = tempDir('autodev-worker-pr-');
  const srv = join(dir, 'srv', 'acme');
  mkdirSync(srv, { recursive: true });
  gitIn(dir, ['clone', '--quiet', '--bare', makeRemote(dir), join(srv, 'app.git')]);
  git = await startGitHttpServer({ root: join(dir, 'srv') });
  forge = await startForgeServer({ tokens: [TOKEN] });
}, 60_000);

afterAll(async () => {
  await git?.close();
  await forge?.close();
  await ddb?.stop();
});

describe('the Fargate worker opens the pull request', () => {
  it('pushes over HTTP, opens one pull request on the configured forge, and reports its URL', async () => {
    // Arrange: a prepared task on a repo whose host is a GitHub forge (Enterprise Server style)
    const repo = git.urlFor('acme/app.git');
    const task = makeTask({ prompt: 'Write notes [fake:edit=NOTES.md]', repo });
    await store.create(task);
    const running = transition(task, 'running', {}, new Date());
    await store.put(running, 0);
    const prep = prepareAttempt({
      task: running,
      role: BUILT_IN_ROLES.backend,
      available: () => true,
      now: new Date(),
      leaseOwner: `${task.id}-1`,
    });
    await store.put(prep.task, running.version);
    const env = readWorkerEnv({
      AUTODEV_TASK_ID: task.id,
      AUTODEV_TENANT: task.tenant,
      AUTODEV_ATTEMPT: '1',
      TASKS_TABLE_NAME: tableName,
      AUTODEV_WORKSPACES: join(dir, 'ws'),
      AUTODEV_FORGES: JSON.stringify([
        { host: new URL(repo).host, kind: 'github', apiBaseUrl: forge.githubApi, tokenSecret: 'GHE_TOKEN' },
      ]),
    });
    // Act
    const report = await runWorkerTask({
      env,
      store,
      secrets: { GHE_TOKEN: TOKEN, ANTHROPIC_API_KEY: 'sk-ant-test' },
      baseEnv: { PATH: `${FAKES}:${process.env.PATH}` },
      signal: new AbortController().signal,
    });
    // Assert
    expect({ ok: report?.ok, message: report?.message }).toMatchObject({ ok: true });
    expect(forge.violations).toEqual([]);
    expect(forge.pulls).toHaveLength(1);
    const pull = forge.pulls[0];
    expect(pull).toMatchObject({ owner: 'acme', repo: 'app', head: `autodev/${task.id}`, base: 'main' });
    expect(report?.pullRequest?.url).toContain(`/pull/${pull?.number}`);
    expect(await store.getAttemptReport(task.id, 1)).toMatchObject({
      pullRequest: { url: report?.pullRequest?.url },
    });
  });
});
