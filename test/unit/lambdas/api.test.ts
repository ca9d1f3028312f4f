import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import type { ApiEvent, ApiResult } from '../../../lib/api/handler.js';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { transition } from '../../../lib/core/lifecycle.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { lambdaEnvironment, QUEUE_URL } from './environment.js';
import { apiEvent, lambdaContext } from './events.js';

const sqs = mockClient(SQSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let handler: (event: ApiEvent, context: ReturnType<typeof lambdaContext>) => Promise<ApiResult>;

const submitter = {
  sub: 'u-1',
  tenant: 'acme',
  role: 'submitter',
  iss: 'https://id.example.com',
  exp: Math.floor(Date.now() / 1000) + 3600,
};
const call = (e: Parameters<typeof apiEvent>[0]) => handler(apiEvent(e), lambdaContext('api'));
const body = (r: ApiResult) => JSON.parse(String(r.body));

beforeAll(async () => {
  ({ ddb, store } = await lambdaEnvironment());
  ({ handler } = await import('../../../lambdas/api.js'));
}, 60_000);
afterEach(() => {
  sqs.reset();
});
afterAll(async () => ddb?.stop());

describe('api Lambda', () => {
  it('stores a submitted task in DynamoDB and announces it on the FIFO queue in its own message group', async () => {
    // Arrange
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    // Act
    const res = await call({
      method: 'POST',
      path: '/v1/tasks',
      claims: submitter,
      body: { repo: 'https://github.com/acme/app.git', prompt: 'Add rate limiting' },
    });
    // Assert
    expect(res.statusCode).toBe(201);
    const task = body(res);
    expect(task).toMatchObject({ tenant: 'acme', status: 'queued', role: 'backend', createdBy: 'u-1' });
    expect((await store.get('acme', task.id))?.prompt).toBe('Add rate limiting');
    const sent = sqs.commandCalls(SendMessageCommand);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.args[0].input).toEqual({
      QueueUrl: QUEUE_URL,
      MessageBody: JSON.stringify({ kind: 'ready', taskId: task.id, tenant: 'acme', version: 0 }),
      MessageGroupId: task.id,
      MessageDeduplicationId: `${task.id}-0`,
    });
  });

  it('returns the same task for a repeated Idempotency-Key and announces it once', async () => {
    sqs.on(SendMessageCommand).resolves({});
    const req = {
      method: 'POST',
      path: '/v1/tasks',
      claims: submitter,
      headers: { 'idempotency-key': 'k-1' },
      body: { repo: 'https://github.com/acme/app.git', prompt: 'Once' },
    };
    const first = await call(req);
    const second = await call(req);
    const other = await call({ ...req, body: { ...req.body, prompt: 'Other' } });
    expect([first.statusCode, second.statusCode, other.statusCode]).toEqual([201, 200, 409]);
    expect(body(second).id).toBe(body(first).id);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(1);
  });

  it('refuses a request without authorizer claims (401) and a viewer submitting (403)', async () => {
    const anonymous = await call({ method: 'GET', path: '/v1/tasks' });
    const viewer = await call({
      method: 'POST',
      path: '/v1/tasks',
      claims: { ...submitter, role: 'viewer' },
      body: { repo: 'https://github.com/acme/app.git', prompt: 'x' },
    });
    expect(anonymous.statusCode).toBe(401);
    expect(viewer.statusCode).toBe(403);
    expect(body(viewer).error.code).toBe('forbidden');
  });

  it("hides another tenant's task (404) and refuses local repository paths (400)", async () => {
    const theirs = makeTask({ tenant: 'globex' });
    await store.create(theirs);
    const res = await call({ method: 'GET', path: `/v1/tasks/${theirs.id}`, claims: submitter });
    const local = await call({
      method: 'POST',
      path: '/v1/tasks',
      claims: submitter,
      body: { repo: '/srv/repo', prompt: 'x' },
    });
    expect(res.statusCode).toBe(404);
    expect(local.statusCode).toBe(400);
  });

  it('asks the dispatcher to stop the worker of a running task on cancel', async () => {
    sqs.on(SendMessageCommand).resolves({});
    const task = makeTask();
    await store.create(task);
    await store.put(transition(task, 'running', {}, new Date()), 0);
    const res = await call({ method: 'POST', path: `/v1/tasks/${task.id}/cancel`, claims: submitter });
    expect(res.statusCode).toBe(202);
    expect(body(res).cancelRequested).toBe(true);
    const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(JSON.parse(String(sent?.MessageBody))).toEqual({
      kind: 'cancel',
      taskId: task.id,
      tenant: 'acme',
      version: 2,
    });
    expect(sent?.MessageDeduplicationId).toBe(`${task.id}-2`);
  });

  it('lists the tenant newest first and serves logs as text', async () => {
    const task = makeTask();
    await store.create(task);
    await store.appendLogs(task.id, ['hello'], new Date('2026-11-25T01:00:00Z'));
    const list = await call({ method: 'GET', path: '/v1/tasks', claims: submitter, query: { limit: '1' } });
    const logs = await call({ method: 'GET', path: `/v1/tasks/${task.id}/logs`, claims: submitter });
    expect(body(list).items[0].id).toBe(task.id);
    expect(body(list).nextCursor).toBe(task.id);
    expect(logs.body).toBe('2026-11-25T01:00:00.000Z hello\n');
    expect(logs.headers?.['x-autodev-last-seq']).toBe('1');
  });

  it("records calls in the audit trail on the task table, which only the tenant's admin reads", async () => {
    // Arrange
    sqs.on(SendMessageCommand).resolves({});
    const globex = { ...submitter, tenant: 'globex', sub: 'g-1' };
    // Act
    const created = await call({
      method: 'POST',
      path: '/v1/tasks',
      claims: globex,
      body: { repo: 'https://github.com/globex/app.git', prompt: 'Audit me' },
    });
    const refused = await call({
      method: 'POST',
      path: `/v1/tasks/${body(created).id}/cancel`,
      claims: { ...globex, role: 'viewer', sub: 'g-viewer' },
    });
    const asSubmitter = await call({ method: 'GET', path: '/v1/audit', claims: globex });
    const trail = await call({ method: 'GET', path: '/v1/audit', claims: { ...globex, role: 'admin' } });
    const acme = await call({ method: 'GET', path: '/v1/audit', claims: { ...submitter, role: 'admin' } });
    // Assert
    expect([created.statusCode, refused.statusCode, asSubmitter.statusCode]).toEqual([201, 403, 403]);
    expect(trail.statusCode).toBe(200);
    const items = body(trail).items as Record<string, unknown>[];
    const find = (action: string, subject: string) =>
      items.find((e) => e.action === action && e.subject === subject);
    expect(find('task.create', 'g-1')).toMatchObject({
      tenant: 'globex',
      subject: 'g-1',
      action: 'task.create',
      target: body(created).id,
      status: 201,
      outcome: 'ok',
    });
    expect(find('task.cancel', 'g-viewer')).toMatchObject({
      tenant: 'globex',
      subject: 'g-viewer',
      action: 'task.cancel',
      target: body(created).id,
      status: 403,
      outcome: 'forbidden',
      requestId: refused.headers?.['x-request-id'],
    });
    expect(find('audit.read', 'g-1')).toMatchObject({ subject: 'g-1', action: 'audit.read', status: 403 });
    expect(JSON.stringify(body(acme))).not.toContain('globex');
  });
});
