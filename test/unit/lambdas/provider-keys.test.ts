import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { ProviderKeys } from '../../../lib/aws/provider-keys.js';
import type { PrepareOutput, RecordOutput } from '../../../lib/aws/workflow-steps.js';
import { transition } from '../../../lib/core/lifecycle.js';
import type { Task } from '../../../lib/core/schemas.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { lambdaEnvironment } from './environment.js';
import { lambdaContext } from './events.js';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ProviderKeys-abc123';
const sm = mockClient(SecretsManagerClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let prepare: (event: unknown, context: Context) => Promise<PrepareOutput>;
let record: (event: unknown, context: Context) => Promise<RecordOutput>;
const usage = { inputTokens: 1, outputTokens: 1, costUsd: 0 };

beforeAll(async () => {
  // the image carries claude and codex; the secret holds a key for claude only
  sm.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({
    SecretString: JSON.stringify({ ANTHROPIC_API_KEY: 'sk-ant', OPENAI_API_KEY: '', GIT_TOKEN: 'ghp' }),
  });
  ({ ddb, store } = await lambdaEnvironment());
  process.env.PROVIDER_SECRET_ARN = SECRET_ARN;
  // the "prepare" step (the default) returns a PrepareOutput
  prepare = (await import('../../../lambdas/workflow-prepare.js')).handler as unknown as typeof prepare;
  ({ handler: record } = await import('../../../lambdas/workflow-record.js'));
}, 60_000);
afterAll(async () => {
  delete process.env.PROVIDER_SECRET_ARN;
  sm.restore();
  await ddb?.stop();
});

async function admitted(overrides: Partial<Task> = {}): Promise<Task> {
  const task = makeTask(overrides);
  await store.create(task);
  const running = transition(
    task,
    'running',
    { lease: { owner: `${task.id}-1`, expiresAt: Date.now() + 60_000 } },
    new Date(),
  );
  await store.put(running, 0);
  return running;
}
const prepareEvent = (t: Task) => ({ taskId: t.id, tenant: t.tenant, executionName: `${t.id}-1` });

describe('on AWS a provider is a candidate only with its key in Secrets Manager', () => {
  it('does not fail over to a provider of the image whose key is missing from the secret', async () => {
    // Arrange: attempt 1 on claude ends with an auth failure (failover wanted)
    const task = await admitted();
    const planned = await prepare(prepareEvent(task), lambdaContext('prepare'));
    expect(planned).toMatchObject({ action: 'run', plan: { provider: 'claude' } });
    await store.putAttemptReport(task.id, 1, { ok: false, errorClass: 'auth', message: 'bad key', usage });
    // Act
    const out = await record(
      { taskId: task.id, tenant: task.tenant, executionName: `${task.id}-1`, attempt: 1, failure: null },
      lambdaContext('record'),
    );
    // Assert: codex is in the image but has no key (an empty value is none): the task fails
    expect(out).toEqual({ next: 'finish', status: 'failed' });
    const stored = await store.getById(task.id);
    expect(stored?.attempts.map((a) => a.provider)).toEqual(['claude']);
    expect(sm.commandCalls(GetSecretValueCommand).length).toBeGreaterThan(0);
  });
});

describe('ProviderKeys', () => {
  const credentialEnv = (p: string) =>
    ({ claude: ['ANTHROPIC_API_KEY'], codex: ['CODEX_API_KEY', 'OPENAI_API_KEY'], local: [] })[p];
  it('admits providers of the image with any accepted key, or needing none', async () => {
    const keys = new ProviderKeys({
      names: ['claude', 'codex', 'local'],
      credentialEnv,
      load: async () => ({ CODEX_API_KEY: 'k', ANTHROPIC_API_KEY: '' }),
    });
    const available = await keys.available();
    expect(['claude', 'codex', 'local', 'gemini'].filter(available)).toEqual(['codex', 'local']);
  });

  it('without a secret, admits what the image carries', async () => {
    const available = await new ProviderKeys({ names: ['claude'], credentialEnv }).available();
    expect(['claude', 'codex'].filter(available)).toEqual(['claude']);
  });
});
