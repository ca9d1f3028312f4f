import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import type { PrepareOutput, RecordOutput } from '../../../lib/aws/workflow-steps.js';
import { transition } from '../../../lib/core/lifecycle.js';
import { recordProviderResult } from '../../../lib/core/provider-health.js';
import type { Task } from '../../../lib/core/schemas.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { lambdaEnvironment } from './environment.js';
import { lambdaContext } from './events.js';

let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let prepare: (event: unknown, context: Context) => Promise<PrepareOutput>;
let record: (event: unknown, context: Context) => Promise<RecordOutput>;
const usage = { inputTokens: 10, outputTokens: 5, costUsd: 0.01 };

const events = mockClient(EventBridgeClient);

beforeAll(async () => {
  process.env.TASK_EVENT_BUS_NAME = 'autodev-task-events';
  events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
  ({ ddb, store } = await lambdaEnvironment());
  // the "prepare" step (the default) returns a PrepareOutput
  prepare = (await import('../../../lambdas/workflow-prepare.js')).handler as unknown as typeof prepare;
  ({ handler: record } = await import('../../../lambdas/workflow-record.js'));
}, 60_000);
afterAll(async () => ddb?.stop());

/** A task the dispatcher admitted: running under the lease of execution `<id>-1`. */
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

/** The payload the state machine passes to Prepare. */
const prepareEvent = (t: Task) => ({ taskId: t.id, tenant: t.tenant, executionName: `${t.id}-1` });

describe('workflow Prepare Lambda', () => {
  it("plans the first attempt on the role's first provider with Fargate-sized limits", async () => {
    // Arrange
    const task = await admitted({ role: 'data' });
    // Act
    const out = await prepare(prepareEvent(task), lambdaContext('prepare'));
    // Assert
    expect(out).toEqual({
      action: 'run',
      plan: {
        taskId: task.id,
        tenant: 'acme',
        attempt: 1,
        provider: 'claude',
        cpu: 2,
        memoryMiB: 4096,
        timeoutSeconds: 1800,
        cpuUnits: '2048',
        memory: '4096',
      },
    });
    const stored = await store.getById(task.id);
    expect(stored?.attempts).toMatchObject([{ number: 1, provider: 'claude', outcome: 'running' }]);
    expect(stored?.lease?.owner).toBe(`${task.id}-1`);
  });

  it('skips a provider whose circuit breaker is open in the shared provider state', async () => {
    // Arrange: five crashes on claude within a minute open its breaker
    for (let i = 0; i < 5; i++) await recordProviderResult(store, 'claude', false, 'crash', Date.now());
    const task = await admitted();
    // Act
    const out = await prepare(prepareEvent(task), lambdaContext('prepare'));
    // Assert
    expect(out).toMatchObject({ action: 'run', plan: { provider: 'codex' } });
    await recordProviderResult(store, 'claude', true, undefined, Date.now() + 120_000);
  });

  it('returns the same plan without a second write when the step is retried', async () => {
    const task = await admitted();
    const first = await prepare(prepareEvent(task), lambdaContext('prepare'));
    const version = (await store.getById(task.id))?.version;
    const again = await prepare(prepareEvent(task), lambdaContext('prepare'));
    expect(again).toEqual(first);
    expect((await store.getById(task.id))?.version).toBe(version);
  });

  it('ends a task whose cancel was requested before the attempt started', async () => {
    const task = await admitted();
    await store.put({ ...task, cancelRequested: true, version: task.version + 1 }, task.version);
    const out = await prepare(prepareEvent(task), lambdaContext('prepare'));
    expect(out).toMatchObject({ action: 'stop', status: 'cancelled' });
    expect((await store.getById(task.id))?.status).toBe('cancelled');
  });
});

describe('workflow Record Lambda', () => {
  async function started(overrides: Partial<Task> = {}): Promise<Task> {
    const task = await admitted(overrides);
    await prepare(prepareEvent(task), lambdaContext('prepare'));
    return task;
  }
  const recordEvent = (t: Task, failure: unknown = null, executionName = `${t.id}-1`) => ({
    taskId: t.id,
    tenant: t.tenant,
    executionName,
    attempt: 1,
    failure,
  });

  it("finishes a task with the worker's successful report", async () => {
    const task = await started();
    await store.putAttemptReport(task.id, 1, {
      ok: true,
      summary: 'Added it',
      branch: `autodev/${task.id}`,
      commit: 'abc123',
      usage,
      changedFiles: ['a.ts'],
    });
    const out = await record(recordEvent(task), lambdaContext('record'));
    expect(out).toEqual({ next: 'finish', status: 'succeeded' });
    const stored = await store.getById(task.id);
    expect(stored).toMatchObject({
      status: 'succeeded',
      branch: `autodev/${task.id}`,
      commit: 'abc123',
      usage,
    });
    expect(stored?.lease).toBeUndefined();
  });

  it('retries on the same provider after a worker timeout with no report', async () => {
    const task = await started();
    const out = await record(
      recordEvent(task, { Error: 'States.Timeout', Cause: '' }),
      lambdaContext('record'),
    );
    expect(out.next).toBe('retry');
    const stored = await store.getById(task.id);
    expect(stored?.status).toBe('retrying');
    expect(stored?.provider).toBe('claude');
    expect(stored?.attempts[0]).toMatchObject({ outcome: 'failed', errorClass: 'timeout' });
  });

  it('fails a task at once on a workspace fault and leaves the provider’s breaker and rate as they were', async () => {
    const task = await started();
    const before = await store.getProviderState('claude');
    await store.putAttemptReport(task.id, 1, {
      ok: false,
      errorClass: 'workspace',
      message: 'The repository https://example.com/acme/gone.git does not exist or cannot be reached.',
      usage,
    });
    const out = await record(recordEvent(task), lambdaContext('record'));
    expect(out).toEqual({ next: 'finish', status: 'failed' });
    const stored = await store.getById(task.id);
    expect(stored?.error).toEqual({
      code: 'workspace',
      message: 'The repository https://example.com/acme/gone.git does not exist or cannot be reached.',
    });
    expect(stored?.attempts[0]).toMatchObject({ outcome: 'failed', errorClass: 'workspace' });
    const after = await store.getProviderState('claude');
    expect(after?.breaker).toEqual(before?.breaker);
    expect(after?.recent).toEqual(before?.recent);
  });

  it('fails over to the next available provider at once after an auth failure', async () => {
    const task = await started();
    await store.putAttemptReport(task.id, 1, { ok: false, errorClass: 'auth', message: 'bad key', usage });
    const out = await record(recordEvent(task), lambdaContext('record'));
    expect(out).toEqual({ next: 'retry', waitSeconds: 0 });
    expect((await store.getById(task.id))?.provider).toBe('codex');
  });

  it('records an attempt once when the step is retried, and announces the end once', async () => {
    const task = await started({ role: 'security' });
    await store.putAttemptReport(task.id, 1, { ok: false, errorClass: 'context_overflow', usage });
    events.resetHistory();
    const first = await record(recordEvent(task), lambdaContext('record'));
    const again = await record(recordEvent(task), lambdaContext('record'));
    expect(first).toEqual({ next: 'finish', status: 'failed' });
    expect(again).toEqual(first);
    expect((await store.getById(task.id))?.usage.costUsd).toBe(0.01);
    const sent = events.commandCalls(PutEventsCommand);
    expect(sent).toHaveLength(1);
    const entry = sent[0]?.args[0].input.Entries?.[0];
    expect(entry).toMatchObject({
      EventBusName: 'autodev-task-events',
      Source: 'autodev',
      DetailType: 'Task Finished',
    });
    expect(JSON.parse(entry?.Detail ?? '{}')).toMatchObject({
      id: task.id,
      tenant: task.tenant,
      status: 'failed',
      error: { code: 'context_overflow' },
    });
  });

  it('leaves a task alone when another execution owns it (re-queued and admitted again)', async () => {
    // Arrange: attempt 1 runs under execution -1; the reaper re-queued the task and -2 took it
    const task = await started();
    const stale = await store.getById(task.id);
    if (!stale) throw new Error('task missing');
    await store.put(
      {
        ...stale,
        lease: { owner: `${task.id}-2`, expiresAt: Date.now() + 60_000 },
        version: stale.version + 1,
      },
      stale.version,
    );
    await store.putAttemptReport(task.id, 1, { ok: true, usage });
    // Act
    const recorded = await record(recordEvent(task), lambdaContext('record'));
    const prepared = await prepare(prepareEvent(task), lambdaContext('prepare'));
    // Assert
    expect(recorded).toEqual({ next: 'finish', status: 'running' });
    expect(prepared).toMatchObject({ action: 'stop', reason: `the task belongs to ${task.id}-2` });
    expect((await store.getById(task.id))?.version).toBe(stale.version + 1);
  });

  it('keeps its lease on a retrying task so that the next Prepare of the same execution goes on', async () => {
    const task = await started();
    await store.putAttemptReport(task.id, 1, { ok: false, errorClass: 'crash', usage });
    await record(recordEvent(task), lambdaContext('record'));
    const stored = await store.getById(task.id);
    expect(stored?.status).toBe('retrying');
    expect(stored?.lease?.owner).toBe(`${task.id}-1`);
    const next = await prepare(prepareEvent(task), lambdaContext('prepare'));
    expect(next).toMatchObject({ action: 'run', plan: { attempt: 2, provider: 'claude' } });
  });

  it('rejects a payload that is not the state machine’s', async () => {
    await expect(record({ taskId: 'x' }, lambdaContext('record'))).rejects.toThrow();
  });
});
