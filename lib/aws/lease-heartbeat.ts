import type { Task } from '../core/schemas.js';
import { renewLease } from '../core/workflow.js';
import { mutateTask } from './mutate-task.js';

export interface LeaseHeartbeatOptions {
  store: {
    getById(id: string): Promise<Task | undefined>;
    put(task: Task, expectedVersion: number): Promise<void>;
  };
  taskId: string;
  attempt: number;
  /** How often the lease is renewed. */
  everyMs: number;
  /** How far ahead of each renewal the lease runs. */
  leaseMs: number;
  /** Where this worker runs (its ECS task ARN), recorded on the attempt by the first beat. */
  workerRef?: () => Promise<string | undefined>;
  /** The task no longer runs this attempt (reaped, cancelled, recorded): stop working on it. */
  onLost: () => void;
  /** A renewal failed (throttling, network); the next one tries again. */
  onError?: (err: unknown) => void;
  now?: () => Date;
}

/**
 * Renews the lease of a running attempt while the worker works on it (agent runs, quality gates,
 * repair and review rounds alike), so an attempt that outlives its first lease is never taken for
 * lost by the reaper and started a second time. Renewals are conditional writes on the task's
 * version through the core `renewLease`; one at a time, never overlapping.
 */
export function startLeaseHeartbeat(opts: LeaseHeartbeatOptions): { stop: () => Promise<void> } {
  const now = opts.now ?? (() => new Date());
  let stopped = false;
  let ref: string | undefined;
  const beat = async () => {
    try {
      const moved = await mutateTask(opts.store, opts.taskId, (t) =>
        renewLease(t, opts.attempt, now(), opts.leaseMs, ref),
      );
      ref = undefined;
      if (!stopped && !moved?.after) {
        stopped = true;
        opts.onLost();
      }
    } catch (err) {
      opts.onError?.(err);
    }
  };
  // the first beat at once: it records where the worker runs, so that cancel can stop it
  let running = (async () => {
    ref = await opts.workerRef?.().catch(() => undefined);
    await beat();
  })();
  const timer = setInterval(() => {
    if (!stopped) running = running.then(beat);
  }, opts.everyMs);
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
