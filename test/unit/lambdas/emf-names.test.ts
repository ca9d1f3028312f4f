import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import type { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { transition } from '../../../lib/core/lifecycle.js';
import { METRICS, type MetricSpec } from '../../../lib/core/metric-names.js';
import type { DynamoDbLocal } from '../../support/dynamodb-local.js';
import { makeTask } from '../../support/tasks.js';
import { lambdaEnvironment } from './environment.js';
import { lambdaContext } from './events.js';

let ddb: DynamoDbLocal;
let store: DynamoTaskStore;
let prepare: (event: unknown, context: Context) => Promise<unknown>;
let record: (event: unknown, context: Context) => Promise<unknown>;

beforeAll(async () => {
  ({ ddb, store } = await lambdaEnvironment());
  // the shared Lambda environment silences metrics; here they are what is looked at
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  // the step Lambda's middy handler, called as Lambda calls it
  ({ handler: prepare } = (await import('../../../lambdas/workflow-prepare.js')) as unknown as {
    handler: typeof prepare;
  });
  ({ handler: record } = await import('../../../lambdas/workflow-record.js'));
}, 60_000);
afterAll(async () => ddb?.stop());

interface EmfRecord {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [k: string]: unknown;
}

/** Runs `fn` and returns the EMF records the Lambdas printed meanwhile. */
async function emfOf(fn: () => Promise<unknown>): Promise<EmfRecord[]> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(String(chunk));
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return lines
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as EmfRecord);
}

describe('the workflow Lambdas emit EMF by the names of lib/core/metric-names', () => {
  it('one attempt prepared and recorded: only listed names, units and labels as dimensions', async () => {
    // Arrange: a task the dispatcher admitted, whose worker reported success
    const task = makeTask();
    await store.create(task);
    const running = transition(
      task,
      'running',
      { lease: { owner: `${task.id}-1`, expiresAt: Date.now() + 60_000 } },
      new Date(),
    );
    await store.put(running, 0);
    const execution = { taskId: task.id, tenant: task.tenant, executionName: `${task.id}-1` };
    // Act
    const records = await emfOf(async () => {
      await prepare(execution, lambdaContext('prepare'));
      await store.putAttemptReport(task.id, 1, {
        ok: true,
        summary: 'done',
        usage: { inputTokens: 1200, outputTokens: 80, costUsd: 0.02 },
        changedFiles: [],
      });
      await record({ ...execution, attempt: 1, failure: null }, lambdaContext('record'));
    });
    // Assert
    const byName = new Map<string, MetricSpec>(Object.values(METRICS).map((m) => [m.name, m]));
    const emitted = records.flatMap((r) =>
      r._aws.CloudWatchMetrics.flatMap((d) =>
        d.Metrics.map((m) => ({ name: m.Name, unit: m.Unit, dims: d.Dimensions.flat(), value: r[m.Name] })),
      ),
    );
    expect(emitted.length).toBeGreaterThan(0);
    for (const e of emitted) {
      const spec = byName.get(e.name);
      expect([e.name, spec?.where.includes('emf')]).toEqual([e.name, true]);
      expect([e.name, e.unit]).toEqual([e.name, spec?.unit]);
      expect([e.name, [...e.dims].sort()]).toEqual([e.name, ['service', ...(spec?.labels ?? [])].sort()]);
    }
    const names = new Set(emitted.map((e) => e.name));
    for (const key of [
      'attemptsStarted',
      'attempts',
      'attemptDuration',
      'cost',
      'tokens',
      'tasksFinished',
      'taskDuration',
    ] as const)
      expect([key, names.has(METRICS[key].name)]).toEqual([key, true]);
    const tokens = records.filter((r) => r[METRICS.tokens.name] !== undefined);
    expect(tokens.map((r) => [r.direction, r[METRICS.tokens.name]])).toEqual([
      ['input', 1200],
      ['output', 80],
    ]);
  });
});
