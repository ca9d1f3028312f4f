import { Duration, TimeZone } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import type { RecurringTask } from '../aws/recurring.js';
import { AutoDevFunction } from './autodev-function.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskStore } from './task-store.js';

export interface SchedulesProps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  /** How often the reaper runs. @default 5 minutes */
  readonly reaperEvery?: Duration;
  /** Tasks submitted on a schedule. @default none */
  readonly recurring?: readonly RecurringTask[];
  /** Providers the worker image carries, for submission checks. */
  readonly providers?: string;
}

/**
 * EventBridge Scheduler jobs: the reaper (lost workflows, expired leases, blocked tasks) and one
 * schedule per recurring task, which submits it through the task service once per firing.
 */
export class Schedules extends Construct {
  public readonly reaper: AutoDevFunction;
  public readonly reaperSchedule: scheduler.Schedule;
  public readonly submitter?: AutoDevFunction;
  public readonly recurringSchedules: scheduler.Schedule[] = [];

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    this.reaper = new AutoDevFunction(this, 'Reaper', {
      entry: 'reaper',
      description: 'AutoDev reaper: re-queue tasks whose workflow was lost, release blocked tasks',
      timeout: Duration.minutes(2),
    });
    props.store.grantReadWrite(this.reaper);
    props.queue.grantSend(this.reaper);
    this.reaperSchedule = new scheduler.Schedule(this, 'ReaperSchedule', {
      description: 'Run the AutoDev reaper',
      schedule: scheduler.ScheduleExpression.rate(props.reaperEvery ?? Duration.minutes(5)),
      target: new targets.LambdaInvoke(this.reaper, { retryAttempts: 0 }),
    });
    if (!props.recurring?.length) return;
    const submitter = new AutoDevFunction(this, 'Submitter', {
      entry: 'schedules',
      description: 'AutoDev recurring tasks: submit one task per schedule firing',
      environment: props.providers ? { AUTODEV_PROVIDERS: props.providers } : {},
    });
    this.submitter = submitter;
    props.store.grantReadWrite(submitter);
    props.queue.grantSend(submitter);
    for (const r of props.recurring) {
      this.recurringSchedules.push(
        new scheduler.Schedule(this, `Recurring-${r.name}`, {
          description: `AutoDev recurring task ${r.name} (tenant ${r.tenant})`,
          schedule: scheduler.ScheduleExpression.expression(
            r.schedule,
            r.timezone ? TimeZone.of(r.timezone) : undefined,
          ),
          target: new targets.LambdaInvoke(submitter, {
            retryAttempts: 3,
            input: scheduler.ScheduleTargetInput.fromObject({
              name: r.name,
              tenant: r.tenant,
              task: r.task,
              scheduledTime: scheduler.ContextAttribute.scheduledTime,
            }),
          }),
        }),
      );
    }
  }
}
