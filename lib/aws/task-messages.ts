import { z } from 'zod';

/** What the task queue carries: a task became ready, or a running task was asked to stop. */
export const TaskMessage = z.object({
  kind: z.enum(['ready', 'cancel']),
  taskId: z.string().min(1).max(64),
  tenant: z.string().min(1).max(64),
  version: z.number().int().nonnegative(),
});
export type TaskMessage = z.infer<typeof TaskMessage>;

/**
 * The FIFO message group of a task's messages: the task itself. A task's ready and cancel stay in
 * order; a message that keeps failing (or a tenant's burst) holds up that one task only, never the
 * tenant's other tasks or anyone's cancel.
 */
export const messageGroupOf = (message: Pick<TaskMessage, 'taskId'>): string => message.taskId;
