import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import type { ApiEvent, ApiResult } from '../../../lib/api/handler.js';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { recordProviderResult } from '../../../lib/core/provider-health.js';
import { signGithubPayload } from '../../../lib/core/webhooks.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { lambdaEnvironment } from './environment.js';
import { apiEvent, lambdaContext } from './events.js';

const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:GitHubWebhookSecret-abc123';
const SECRET = 'generated-webhook-secret-0123456789abcdef';
const sm = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let handler: (event: ApiEvent, context: ReturnType<typeof lambdaContext>) => Promise<ApiResult>;

const payload = {
  action: 'labeled',
  label: { name: 'autodev' },
  issue: {
    number: 17,
    title: 'Add rate limiting to the orders API',
    body: 'At most 100 requests a minute per client.',
    html_url: 'https://github.com/acme/shop/issues/17',
    labels: [{ name: 'autodev' }],
  },
  repository: {
    full_name: 'acme/shop',
    clone_url: 'https://github.com/acme/shop.git',
    default_branch: 'main',
  },
};

/** A GitHub delivery as API Gateway passes it on the webhook's own route: no JWT, no authorizer claims. */
function delivery(id: string, secret = SECRET): ApiEvent {
  const body = JSON.stringify(payload);
  const event = apiEvent({
    method: 'POST',
    path: '/v1/webhooks/github',
    headers: {
      'x-github-event': 'issues',
      'x-github-delivery': id,
      'x-hub-signature-256': signGithubPayload(secret, body),
    },
  });
  return { ...event, body };
}

beforeAll(async () => {
  sm.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({ SecretString: SECRET });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
  ({ ddb, store } = await lambdaEnvironment());
  Object.assign(process.env, { GITHUB_WEBHOOK_SECRET_ARN: SECRET_ARN, GITHUB_WEBHOOK_TENANT: 'acme' });
  ({ handler } = await import('../../../lambdas/api.js'));
}, 60_000);
afterAll(async () => {
  delete process.env.GITHUB_WEBHOOK_SECRET_ARN;
  delete process.env.GITHUB_WEBHOOK_TENANT;
  sm.restore();
  sqs.restore();
  await ddb?.stop();
});

describe('api Lambda: POST /v1/webhooks/github on AWS', () => {
  it('submits a task for a signed delivery and refuses its replay through DynamoDB', async () => {
    // Act
    const first = await handler(delivery('d-aws-1'), lambdaContext('api'));
    const replay = await handler(delivery('d-aws-1'), lambdaContext('api'));
    // Assert
    expect(first.statusCode).toBe(201);
    const task = JSON.parse(String(first.body));
    expect(task).toMatchObject({
      tenant: 'acme',
      repo: 'https://github.com/acme/shop.git',
      createdBy: 'github-webhook',
    });
    expect((await store.get('acme', task.id))?.status).toBe('queued');
    expect(replay.statusCode).toBe(200);
    expect(JSON.parse(String(replay.body))).toMatchObject({ ignored: 'replayed delivery' });
  });

  it('answers 401 to a delivery signed with another secret', async () => {
    const res = await handler(delivery('d-aws-2', 'guessed'), lambdaContext('api'));
    expect(res.statusCode).toBe(401);
  });
});

describe('api Lambda: GET /v1/providers on AWS', () => {
  it("lists the image's providers with their circuit breaker and success rate", async () => {
    // Arrange: one failure and one success recorded for claude in the shared provider health
    const now = Date.now();
    await recordProviderResult(store, 'claude', false, 'crash', now);
    await recordProviderResult(store, 'claude', true, undefined, now);
    // Act
    const res = await handler(
      apiEvent({
        method: 'GET',
        path: '/v1/providers',
        claims: {
          sub: 'u-1',
          tenant: 'acme',
          role: 'viewer',
          iss: 'https://id.example.com',
          exp: Math.floor(Date.now() / 1000) + 3600,
        },
      }),
      lambdaContext('api'),
    );
    // Assert
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(String(res.body)).items).toEqual([
      { name: 'claude', breaker: 'closed', successRate: 0.5, recentAttempts: 2 },
      { name: 'codex', breaker: 'closed', recentAttempts: 0 },
    ]);
  });
});
