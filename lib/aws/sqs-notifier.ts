import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Task } from '../core/schemas.js';
import type { TaskNotifier } from '../core/tasks.js';
import { messageGroupOf, type TaskMessage } from './task-messages.js';

/**
 * Tells the dispatcher about tasks through the SQS FIFO task queue: one message group per task
 * (`messageGroupOf`: a task's messages stay in order, a poison message or a tenant's burst holds up
 * no other task and no cancel) and a deduplication id of task id + version, so a retried API call
 * or Lambda sends one message.
 */
export class SqsTaskNotifier implements TaskNotifier {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  private async send(kind: TaskMessage['kind'], task: Task): Promise<void> {
    const message: TaskMessage = { kind, taskId: task.id, tenant: task.tenant, version: task.version };
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        MessageGroupId: messageGroupOf(message),
        MessageDeduplicationId: `${task.id}-${task.version}`,
      }),
    );
  }

  taskReady(task: Task): Promise<void> {
    return this.send('ready', task);
  }

  cancelRequested(task: Task): Promise<void> {
    return this.send('cancel', task);
  }
}
