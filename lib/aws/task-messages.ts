import { z } from 'zod';

/** What the task queue carries: a task became ready, or a running task was asked to stop. */
export const TaskMessage = z.object({
  kind: z.enum(['ready', 'cancel']),
  taskId: z.string().min(1).max(64),
  tenant: z.string().min(1).max(64),
  version: z.number().int().nonnegative(),
});
export type TaskMessage = z.infer<typeof TaskMessage>;
