import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Task } from '../core/schemas.js';

export const TASK_EVENT_SOURCE = 'autodev';
export const TASK_FINISHED = 'Task Finished';

/** What a "Task Finished" event carries: the task, with its prompt cut to fit an event. */
export function taskEventDetail(task: Task): Task {
  const { lease: _lease, ...rest } = task;
  return { ...rest, prompt: task.prompt.length > 4000 ? `${task.prompt.slice(0, 3999)}…` : task.prompt };
}

/**
 * Publishes "Task Finished" on an EventBridge bus, once per task end (the record step calls it only
 * when its conditional write moved the task). Rules on the bus fan it out: notifications, audits.
 */
export class TaskEventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async taskFinished(task: Task): Promise<void> {
    const res = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.busName,
            Source: TASK_EVENT_SOURCE,
            DetailType: TASK_FINISHED,
            Resources: [],
            Detail: JSON.stringify(taskEventDetail(task)),
          },
        ],
      }),
    );
    if (res.FailedEntryCount) {
      throw new Error(
        `EventBridge refused the event: ${res.Entries?.[0]?.ErrorCode ?? 'unknown'} ${res.Entries?.[0]?.ErrorMessage ?? ''}`,
      );
    }
  }
}
