import { join } from 'node:path';
import { build } from 'esbuild';
import type { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { transition } from '../../lib/core/lifecycle.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
import type { Task } from '../../lib/core/schemas.js';
import { prepareAttempt } from '../../lib/core/workflow.js';
import { ROOT } from './local-platform.js';
import { makeTask } from './tasks.js';

/** The Fargate worker's entry point as the image runs it: one ES module bundled by esbuild. */
export async function bundleWorkerEntry(outfile: string): Promise<void> {
  await build({
    entryPoints: [join(ROOT, 'containers/worker/entry.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
}

/**
 * A task the workflow prepared: running attempt 1 on claude, in the store. With `leaseMs`, its
 * lease ends that long from now instead of the workflow's default.
 */
export async function preparedTask(
  store: DynamoTaskStore,
  prompt: string,
  repo: string,
  leaseMs?: number,
): Promise<Task> {
  const task = makeTask({ prompt, repo });
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
  const prepared =
    leaseMs === undefined
      ? prep.task
      : { ...prep.task, lease: { owner: `${task.id}-1`, expiresAt: Date.now() + leaseMs } };
  await store.put(prepared, running.version);
  return prepared;
}
