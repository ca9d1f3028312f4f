import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import type { Schedule, Scheduler } from '../core/schedules.js';

export interface EventBridgeSchedulerOptions {
  client: SchedulerClient;
  /** The schedule group of API-made schedules (`SCHEDULE_GROUP_NAME`). */
  groupName: string;
  /** The role EventBridge Scheduler assumes to invoke the submitter (`SCHEDULER_ROLE_ARN`). */
  roleArn: string;
  /** The submitter Lambda (`SCHEDULE_TARGET_ARN`, lambdas/schedules.ts). */
  targetArn: string;
}

/** What each firing passes to the submitter; `<aws.scheduler.scheduled-time>` is filled in by EventBridge. */
export function firingInput(schedule: Schedule): string {
  return JSON.stringify({
    scheduleId: schedule.id,
    tenant: schedule.tenant,
    name: schedule.name,
    task: schedule.task,
    scheduledTime: '<aws.scheduler.scheduled-time>',
  });
}

/**
 * The Scheduler port on EventBridge Scheduler: one schedule per API-made schedule, named by its
 * id in one group, invoking the submitter Lambda that submits the task once per firing.
 */
export class EventBridgeScheduler implements Scheduler {
  constructor(private readonly opts: EventBridgeSchedulerOptions) {}

  scheduleInput(schedule: Schedule): CreateScheduleCommandInput {
    return {
      Name: schedule.id,
      GroupName: this.opts.groupName,
      Description: `AutoDev schedule ${schedule.name} (tenant ${schedule.tenant})`,
      ScheduleExpression: schedule.schedule,
      ScheduleExpressionTimezone: schedule.timezone,
      State: schedule.enabled ? 'ENABLED' : 'DISABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'NONE',
      Target: {
        Arn: this.opts.targetArn,
        RoleArn: this.opts.roleArn,
        Input: firingInput(schedule),
        RetryPolicy: { MaximumRetryAttempts: 3 },
      },
    };
  }

  async upsert(schedule: Schedule): Promise<void> {
    const input = this.scheduleInput(schedule);
    try {
      await this.opts.client.send(new CreateScheduleCommand(input));
    } catch (err) {
      if (!(err instanceof ConflictException)) throw err;
      await this.opts.client.send(new UpdateScheduleCommand(input));
    }
  }

  async remove(schedule: Schedule): Promise<void> {
    try {
      await this.opts.client.send(
        new DeleteScheduleCommand({ Name: schedule.id, GroupName: this.opts.groupName }),
      );
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
  }
}
