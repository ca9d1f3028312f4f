import type { AgentRole } from '../core/roles.js';
import type { Task } from '../core/schemas.js';
import type { TaskNotifier } from '../core/tasks.js';
import { reapTask, releaseAll } from '../core/workflow-engine.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';

export interface ReaperDeps {
  store: Pick<
    DynamoTaskStore,
    'getById' | 'put' | 'appendLogs' | 'listByStatus' | 'listExpiredLeases' | 'get' | 'createBatch'
  >;
  notifier: Pick<TaskNotifier, 'taskReady'>;
  roles: Record<string, AgentRole>;
  now?: () => Date;
  /** A task queued this long without being admitted is announced again (a lost message). @default 10 min */
  reannounceAfterMs?: number;
  /**
   * Resumes executions parked on providers that have free slots (slots that lapsed without a
   * release, a wake-up that went astray); returns how many. @default none
   */
  wakeParked?: (now: Date) => Promise<number>;
}

export interface ReaperReport {
  requeued: number;
  failed: number;
  cancelled: number;
  released: number;
  reannounced: number;
  woken: number;
}

/**
 * One reaper pass (scheduled): running tasks past their lease are re-queued, failed or cancelled
 * (core `reapExpired`), so are retrying tasks whose workflow stopped between attempts; blocked
 * tasks whose dependencies ended are queued or failed (core `releaseBlocked`). Queued tasks are
 * announced to the dispatcher, and tasks queued for long are announced again (the first message
 * may have been lost between the store and the queue); admission is idempotent.
 */
export async function reap(deps: ReaperDeps): Promise<ReaperReport> {
  const now = (deps.now ?? (() => new Date()))();
  const report: ReaperReport = {
    requeued: 0,
    failed: 0,
    cancelled: 0,
    released: 0,
    reannounced: 0,
    woken: 0,
  };
  const reannounceBefore = now.getTime() - (deps.reannounceAfterMs ?? 10 * 60_000);
  for (const waiting of await deps.store.listByStatus('queued')) {
    if (Date.parse(waiting.updatedAt) >= reannounceBefore) continue;
    await deps.notifier.taskReady(waiting);
    report.reannounced++;
  }
  const settle = async (after: Task | undefined, line: string) => {
    if (!after) return;
    if (after.status === 'queued') await deps.notifier.taskReady(after);
    await deps.store.appendLogs(after.id, [line], now);
  };
  // every task whose lease expired, from the byLease index (all shards, all pages)
  const stuckOnes = await deps.store.listExpiredLeases(now);
  for (const stuck of stuckOnes) {
    const after = await reapTask(deps.store, deps.roles, stuck.id, now);
    if (!after) continue;
    if (after.status === 'queued') report.requeued++;
    else if (after.status === 'failed') report.failed++;
    else report.cancelled++;
    await settle(after, `${after.status === 'queued' ? 're-queued' : after.status}: its lease expired`);
  }
  // a failure runs down each chain of dependents to its end in this one pass
  for (const released of await releaseAll(deps.store, await deps.store.listByStatus('blocked'), now)) {
    report.released++;
    await settle(released, releaseLine(released));
  }
  report.woken = (await deps.wakeParked?.(now)) ?? 0;
  return report;
}

/** The log line of a task the release step moved (or, an epic's sub-task, stored). */
export function releaseLine(task: Task): string {
  if (task.version === 0) return `stored as sub-task ${task.key ?? ''} of epic ${task.parent ?? ''}`;
  if (task.status === 'queued') return 'dependencies succeeded; queued';
  if (task.status === 'failed') return `failed: ${task.error?.message ?? ''}`;
  return `${task.status}: ${task.summary ?? ''}`;
}
