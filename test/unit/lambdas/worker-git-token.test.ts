import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
import { type GitHttpServer, startGitHttpServer } from '../../support/git-http-server.js';
import { FAKES, gitIn, makeRemote, tempDir } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';

const GIT_TOKEN = `git-token-${randomBytes(12).toString('hex')}`;
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let server: GitHttpServer;
let dir: string;
let bare: string;
let tableName: string;
let dumps: string;
const savedPath = process.env.PATH;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  store = new DynamoTaskStore({ client: ddb.client, tableName });
  dir = tempDir('autodev-worker-token-');
  const srv = join(dir, 'srv', 'acme');
  mkdirSync(srv, { recursive: true });
  bare = join(srv, 'app.git');
  gitIn(dir, ['clone', '--quiet', '--bare', makeRemote(dir), bare]);
  // the remote refuses anyone without the token
  server = await startGitHttpServer({
    root: join(dir, 'srv'),
    auth: { username: 'x-access-token', password: GIT_TOKEN },
  });
  // every git the worker starts is this wrapper: it records its environment and command line
  dumps = join(dir, 'dumps');
  const wrapper = join(dir, 'wrapper');
  mkdirSync(dumps);
  mkdirSync(wrapper);
  const realGit = gitIn(dir, ['--exec-path'])
    .trim()
    .replace(/\/lib\/git-core$/, '/bin/git');
  writeFileSync(
    join(wrapper, 'git'),
    `#!/bin/sh\n{ env; echo "ARGS: $*"; } > '${dumps}'/git-$$.txt\nexec '${realGit}' "$@"\n`,
  );
  chmodSync(join(wrapper, 'git'), 0o755);
  process.env.PATH = `${wrapper}:${savedPath}`;
}, 60_000);

afterAll(async () => {
  process.env.PATH = savedPath;
  await server?.close();
  await ddb?.stop();
});

describe('the Fargate worker’s git token', () => {
  it('reaches git per command through a pipe: fetch and push work, no git process holds it in its environment or command line', async () => {
    // Arrange
    const repo = server.urlFor('acme/app.git');
    const task = makeTask({ prompt: 'List your environment [fake:envnames=ENV.txt]', repo });
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
    });
    // Act
    const report = await runWorkerTask({
      env,
      store,
      secrets: { GIT_TOKEN, ANTHROPIC_API_KEY: 'sk-ant-test', OPENAI_API_KEY: 'sk-test-openai-key' },
      baseEnv: { PATH: `${FAKES}:${savedPath}` },
      signal: new AbortController().signal,
    });
    // Assert: fetched and pushed with the token
    expect({ ok: report?.ok, message: report?.message }).toEqual({ ok: true, message: undefined });
    expect(gitIn(bare, ['rev-parse', `refs/heads/autodev/${task.id}`]).trim()).toBe(report?.commit);
    // ... and no git process had it in its environment or its command line
    const seen = readdirSync(dumps).map((f) => readFileSync(join(dumps, f), 'utf8'));
    expect(seen.some((d) => /ARGS: .* fetch /.test(d))).toBe(true);
    expect(seen.some((d) => /ARGS: .* push /.test(d))).toBe(true);
    for (const d of seen) {
      expect(d).not.toContain(GIT_TOKEN);
      expect(d).not.toMatch(/^(GIT_TOKEN|GIT_ASKPASS|ANTHROPIC_API_KEY|OPENAI_API_KEY)=/m);
    }
    expect(process.env.GIT_TOKEN).toBeUndefined();
    expect(process.env.GIT_ASKPASS).toBeUndefined();
    // the agent had its own provider's key only, and no git token
    const names = gitIn(bare, ['show', `autodev/${task.id}:ENV.txt`])
      .trim()
      .split('\n');
    expect(names).toContain('ANTHROPIC_API_KEY');
    expect(names).not.toContain('OPENAI_API_KEY');
    expect(names).not.toContain('GIT_TOKEN');
  });
});
