import { isTerminal, type Task } from './schemas.js';

/** Finished tasks and their logs are kept this long unless configured otherwise (`AUTODEV_RETENTION_DAYS`). */
export const DEFAULT_RETENTION_DAYS = 90;

/** The retention as milliseconds; 0 days keeps everything forever. */
export function retentionMs(days: number): number | undefined {
  return days > 0 ? days * 86_400_000 : undefined;
}

/**
 * When a task's record may go (epoch ms): the retention after it finished. A task not finished
 * never expires (undefined), nor does any task when nothing expires.
 */
export function expiresAt(task: Pick<Task, 'status' | 'updatedAt'>, keepMs: number | undefined) {
  if (keepMs === undefined || !isTerminal(task.status)) return undefined;
  const ended = Date.parse(task.updatedAt);
  return Number.isFinite(ended) ? ended + keepMs : undefined;
}
