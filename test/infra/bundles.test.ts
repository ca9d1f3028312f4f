import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../lib/infra/paths.js';
import { synthStack } from './synth.js';

/** Bundles copied inside the repository, where the runtime's AWS SDK resolves from node_modules. */
const HERE = join(repoRoot(), '.cache', 'bundle-test');
const bundles = new Map<string, string>();

beforeAll(() => {
  const { stack, synth } = synthStack();
  const dir = synth();
  const template = JSON.parse(readFileSync(join(dir, `${stack.artifactId}.template.json`), 'utf8'));
  rmSync(HERE, { recursive: true, force: true });
  for (const [id, r] of Object.entries<{
    Type: string;
    Properties: Record<string, unknown>;
    Metadata?: Record<string, string>;
  }>(template.Resources)) {
    const key = (r.Properties.Code as { S3Key?: string } | undefined)?.S3Key;
    const asset = typeof key === 'string' ? `asset.${key.replace(/\.zip$/, '')}` : undefined;
    if (r.Type !== 'AWS::Lambda::Function' || !asset || !existsSync(join(dir, asset, 'index.mjs'))) continue;
    const target = join(HERE, id);
    mkdirSync(target, { recursive: true });
    cpSync(join(dir, asset, 'index.mjs'), join(target, 'index.mjs'));
    bundles.set(id, join(target, 'index.mjs'));
  }
});

/**
 * Loads a bundle in a fresh Node process, as the Lambda runtime does, and calls its handler with
 * `event` (or only reports the handler's type when there is no event).
 */
function invoke(file: string, event?: unknown): unknown {
  const script = `
    const { handler } = await import(${JSON.stringify(file)});
    if (${event === undefined}) { process.stdout.write('RESULT' + JSON.stringify(typeof handler)); process.exit(0); }
    const context = { functionName: 'f', awsRequestId: 'r', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:1:function:f',
      memoryLimitInMB: '512', getRemainingTimeInMillis: () => 10000 };
    const out = await handler(${JSON.stringify(event)}, context);
    process.stdout.write('RESULT' + JSON.stringify(out));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
      TASKS_TABLE_NAME: 'tasks',
      TASK_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/q.fifo',
      STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:1:stateMachine:m',
      CLUSTER_ARN: 'arn:aws:ecs:eu-west-1:1:cluster/c',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.slice(out.indexOf('RESULT') + 'RESULT'.length));
}

describe('Lambda bundles as deployed (ESM, AWS SDK from the runtime)', () => {
  it('loads every bundle and answers the health check through the API bundle', () => {
    expect(bundles.size).toBe(7);
    const api = [...bundles.entries()].find(([id]) => id.startsWith('ApiFunction'))?.[1];
    if (!api) throw new Error('no API bundle');
    const healthz = invoke(api, {
      version: '2.0',
      rawPath: '/healthz',
      headers: {},
      requestContext: { http: { method: 'GET', path: '/healthz' } },
      isBase64Encoded: false,
    });
    expect(healthz).toMatchObject({ statusCode: 200, body: '{"ok":true}' });
  });

  it('starts each step function and answers a bad payload with a validation error', () => {
    const steps = [...bundles.entries()].filter(([id]) => id.startsWith('Workflow'));
    expect(steps).toHaveLength(2);
    for (const [, file] of steps) {
      expect(() => invoke(file, { nonsense: true })).toThrow(/invalid_type|expected string/);
    }
  });

  it('loads the dispatcher and the reaper', () => {
    const others = [...bundles.entries()].filter(([id]) => /^(Dispatcher|SchedulesReaper)/.test(id));
    expect(others).toHaveLength(2);
    for (const [, file] of others) expect(invoke(file)).toBe('function');
  });
});
