import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import type { ReaperReport } from '../../../lib/aws/reaper.js';
import { newTaskId } from '../../../lib/core/ids.js';
import { transition } from '../../../lib/core/lifecycle.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { lambdaEnvironment } from './environment.js';
import { lambdaContext } from './events.js';

const sqs = mockClient(SQSClient);
let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let handler: (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<ReaperReport>;

beforeAll(async () => {
  ({ ddb, store } = await lambdaEnvironment());
  ({ handler } = await import('../../../lambdas/reaper.js'));
}, 60_000);
afterAll(async () => {
  sqs.reset();
  await ddb?.stop();
});

describe('reaper Lambda (EventBridge Scheduler)', () => {
  it('re-queues a lost task with attempts left, fails one without, and releases a blocked task', async () => {
    // Arrange
    sqs.on(SendMessageCommand).resolves({});
    const past = Date.now() - 1000;
    const attempt = {
      number: 1,
      provider: 'claude',
      startedAt: new Date().toISOString(),
      outcome: 'running' as const,
    };
    const lost = makeTask();
    const exhausted = makeTask({ role: 'security' });
    const healthy = makeTask();
    const dep = makeTask({ status: 'succeeded' });
    const blocked = makeTask({ status: 'blocked', dependsOn: [dep.id] });
    for (const t of [lost, exhausted, healthy, dep, blocked]) await store.create(t);
    await store.put(
      transition(
        lost,
        'running',
        { attempts: [attempt], lease: { owner: 'x', expiresAt: past } },
        new Date(),
      ),
      0,
    );
    await store.put(
      transition(
        exhausted,
        'running',
        { attempts: [attempt, { ...attempt, number: 2 }], lease: { owner: 'x', expiresAt: past } },
        new Date(),
      ),
      0,
    );
    await store.put(
      transition(healthy, 'running', { lease: { owner: 'y', expiresAt: Date.now() + 60_000 } }, new Date()),
      0,
    );
    // Act: the scheduler's event is the schedule's fixed input
    const report = await handler({}, lambdaContext('reaper'));
    // Assert
    expect(report).toEqual({ requeued: 1, failed: 1, cancelled: 0, released: 1, reannounced: 0, woken: 0 });
    expect((await store.getById(lost.id))?.status).toBe('queued');
    expect((await store.getById(lost.id))?.attempts[0]?.outcome).toBe('abandoned');
    expect((await store.getById(exhausted.id))?.error?.code).toBe('abandoned');
    expect((await store.getById(healthy.id))?.status).toBe('running');
    expect((await store.getById(blocked.id))?.status).toBe('queued');
    const announced = sqs
      .commandCalls(SendMessageCommand)
      .map((c) => JSON.parse(String(c.args[0].input.MessageBody)).taskId);
    expect(announced.sort()).toEqual([lost.id, blocked.id].sort());
  });

  it('queues a retrying task whose workflow stopped between attempts, and re-announces a long-queued one', async () => {
    // Arrange
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({});
    const attempt = {
      number: 1,
      provider: 'claude',
      startedAt: new Date().toISOString(),
      endedAt: new Date().toISOString(),
      outcome: 'failed' as const,
      errorClass: 'crash' as const,
    };
    const between = makeTask({
      status: 'retrying',
      attempts: [attempt],
      notBefore: Date.now() - 60_000,
      lease: { owner: 'gone-1-v1', expiresAt: Date.now() - 1000 },
    });
    const waitingLong = makeTask({ updatedAt: new Date(Date.now() - 11 * 60_000).toISOString() });
    const waitingShort = makeTask();
    for (const t of [between, waitingLong, waitingShort]) await store.create(t);
    // Act
    const report = await handler({}, lambdaContext('reaper'));
    // Assert
    expect(report).toMatchObject({ requeued: 1, reannounced: 1 });
    const stored = await store.getById(between.id);
    expect(stored).toMatchObject({ status: 'queued', version: 1 });
    expect(stored?.lease).toBeUndefined();
    expect(stored?.notBefore).toBeUndefined();
    const announced = sqs
      .commandCalls(SendMessageCommand)
      .map((c) => JSON.parse(String(c.args[0].input.MessageBody)).taskId);
    expect(announced.sort()).toEqual([between.id, waitingLong.id].sort());
  });

  it('fails a chain of dependents to its end in one pass, and queues the one that runs anyway', async () => {
    // Arrange: root failed; mid ← root, leaf ← mid (leaf listed first: its id sorts first); anyway ← root
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({});
    const at = Date.now();
    const root = makeTask({
      id: newTaskId(at),
      status: 'failed',
      error: { code: 'auth', message: 'bad key' },
    });
    const mid = makeTask({ id: newTaskId(at + 2), status: 'blocked', dependsOn: [root.id] });
    const leaf = makeTask({ id: newTaskId(at + 1), status: 'blocked', dependsOn: [mid.id] });
    const anyway = makeTask({
      id: newTaskId(at + 3),
      status: 'blocked',
      dependsOn: [root.id],
      onDependencyFailure: 'run',
    });
    for (const t of [root, mid, leaf, anyway]) await store.create(t);
    // Act
    const report = await handler({}, lambdaContext('reaper'));
    // Assert
    expect(report.released).toBe(3);
    expect((await store.getById(mid.id))?.error?.code).toBe('dependency_failed');
    expect((await store.getById(leaf.id))?.error).toEqual({
      code: 'dependency_failed',
      message: `Dependency ${mid.id} ended failed (dependency_failed).`,
    });
    expect((await store.getById(anyway.id))?.status).toBe('queued');
    const announced = sqs
      .commandCalls(SendMessageCommand)
      .map((c) => JSON.parse(String(c.args[0].input.MessageBody)).taskId);
    // (a task queued long by the case before is announced again too)
    expect(announced.filter((id) => [root, mid, leaf, anyway].some((t) => t.id === id))).toEqual([anyway.id]);
  });
});
