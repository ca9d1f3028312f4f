import { Duration } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { AutoDevFunction } from './autodev-function.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskStore } from './task-store.js';

export interface SchedulesProps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  /** How often the reaper runs. @default 5 minutes */
  readonly reaperEvery?: Duration;
}

/** EventBridge Scheduler jobs: the reaper (lost workflows, expired leases, blocked tasks). */
export class Schedules extends Construct {
  public readonly reaper: AutoDevFunction;
  public readonly reaperSchedule: scheduler.Schedule;

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
  }
}
