import { transition } from '../core/lifecycle.js';
import type { Task } from '../core/schemas.js';
import { mutateTask } from '../core/workflow-engine.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';
import type { EcsWorkerStopper } from './ecs-stopper.js';
import type { TaskMessage } from './task-messages.js';
import { executionName, type StepFunctionsLauncher } from './workflow-launcher.js';

export interface DispatchDeps {
  store: Pick<DynamoTaskStore, 'getById' | 'put' | 'appendLogs'>;
  launcher: Pick<StepFunctionsLauncher, 'start'>;
  stopper: Pick<EcsWorkerStopper, 'stop'>;
  now?: () => Date;
  /** How long an admitted task may wait for its workflow's first step before the reaper re-queues it. */
  admissionLeaseMs?: number;
}

export type DispatchResult =
  | { action: 'started'; executionName: string; started: boolean }
  | { action: 'stopped'; ecsTasks: number }
  | { action: 'ignored'; reason: string };

/** True when the task was admitted (running, with a lease) but its workflow has not begun an attempt. */
const admittedNotStarted = (t: Task) =>
  t.status === 'running' && t.lease !== undefined && t.attempts.every((a) => a.outcome !== 'running');

/**
 * One task-queue message. `ready`: admit the queued task (queued → running under a lease named after
 * the workflow execution) with a conditional write, then start that execution; a redelivered message
 * finds the task admitted and starts the same execution name again, which Step Functions ignores.
 * `cancel`: stop the task's worker container.
 */
export async function dispatchMessage(deps: DispatchDeps, message: TaskMessage): Promise<DispatchResult> {
  const now = deps.now ?? (() => new Date());
  if (message.kind === 'cancel') {
    const stopped = await deps.stopper.stop(message.taskId, 'Cancelled through the AutoDev API');
    return { action: 'stopped', ecsTasks: stopped.length };
  }
  const moved = await mutateTask(deps.store, message.taskId, (t) => {
    if (t.tenant !== message.tenant || t.status !== 'queued') return undefined;
    const at = now();
    return transition(
      t,
      'running',
      {
        lease: {
          owner: executionName(t.id, t.attempts.length + 1, t.version + 1),
          expiresAt: at.getTime() + (deps.admissionLeaseMs ?? 15 * 60_000),
        },
        notBefore: undefined,
      },
      at,
    );
  });
  if (!moved) return { action: 'ignored', reason: 'no such task' };
  const task = moved.after ?? moved.before;
  if (task.tenant !== message.tenant) return { action: 'ignored', reason: 'tenant mismatch' };
  if (!admittedNotStarted(task) || !task.lease) {
    return { action: 'ignored', reason: `task is ${task.status}` };
  }
  const name = task.lease.owner;
  const res = await deps.launcher.start(name, { taskId: task.id, tenant: task.tenant });
  if (moved.after) await deps.store.appendLogs(task.id, [`admitted; workflow ${name} started`], now());
  return { action: 'started', executionName: name, started: res.started };
}
