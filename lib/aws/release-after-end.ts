import type { Task } from '../core/schemas.js';
import type { TaskNotifier } from '../core/tasks.js';
import { type ReleaseStore, releaseAll } from '../core/workflow-engine.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';
import { releaseLine } from './reaper.js';

/**
 * The release step right after a task ended (the workflow's record step), not only on the reaper's
 * next pass: blocked tasks whose dependencies ended are queued (and announced) or failed down their
 * chain, a planned epic's sub-tasks are stored, an epic whose sub-tasks ended ends. How many moved.
 */
export async function releaseAfterEnd(
  store: ReleaseStore & Pick<DynamoTaskStore, 'listByStatus' | 'appendLogs'>,
  notifier: Pick<TaskNotifier, 'taskReady'> | undefined,
  ended: Task,
  now: Date,
): Promise<number> {
  if (ended.status === 'running' || ended.status === 'retrying' || ended.status === 'queued') return 0;
  const moved = await releaseAll(store, await store.listByStatus('blocked'), now);
  for (const task of moved) {
    if (task.status === 'queued') await notifier?.taskReady(task);
    await store.appendLogs(task.id, [releaseLine(task)], now);
  }
  return moved.length;
}
