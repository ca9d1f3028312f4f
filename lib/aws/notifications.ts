import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { Task } from '../core/schemas.js';
import {
  NotificationConfig,
  type NotificationTarget,
  type NotifyResult,
  notifyTaskFinished,
} from '../worker/notify.js';

const TaskFinishedEvent = z.object({
  source: z.literal('autodev'),
  'detail-type': z.literal('Task Finished'),
  detail: Task,
});

/** The notification targets from the function's configuration (`NOTIFICATIONS`, JSON). */
export function targetsFromEnv(json: string | undefined): NotificationTarget[] {
  const parsed = NotificationConfig.safeParse(json ? JSON.parse(json) : []);
  if (!parsed.success)
    throw new ConfigError(
      `NOTIFICATIONS: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** Posts a "Task Finished" EventBridge event to the tenant's Slack and Teams targets. Never throws for a post. */
export async function notifyFromEvent(
  event: unknown,
  targets: readonly NotificationTarget[],
  opts: { secrets: Record<string, string | undefined>; apiUrl?: string; fetch?: typeof fetch },
): Promise<NotifyResult[]> {
  const parsed = TaskFinishedEvent.safeParse(event);
  if (!parsed.success) throw new ConfigError('Not an AutoDev "Task Finished" event.');
  const task = parsed.data.detail;
  return notifyTaskFinished(task, targets, {
    secrets: opts.secrets,
    fetch: opts.fetch,
    links: { taskUrl: opts.apiUrl ? `${opts.apiUrl.replace(/\/$/, '')}/v1/tasks/${task.id}` : undefined },
  });
}
