import { Duration, RemovalPolicy, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import type { RecurringTask } from '../aws/recurring.js';
import { AutoDevFunction } from './autodev-function.js';
import { nagValue } from './nag-value.js';
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
 * EventBridge Scheduler jobs: the reaper (lost workflows, expired leases, blocked tasks), one
 * schedule per recurring task, which submits it through the task service once per firing, and the
 * group, role and submitter that schedules made through `POST /v1/schedules` use.
 */
export class Schedules extends Construct {
  public readonly reaper: AutoDevFunction;
  public readonly reaperSchedule: scheduler.Schedule;
  public readonly submitter: AutoDevFunction;
  public readonly recurringSchedules: scheduler.Schedule[] = [];
  /** Where the API puts the schedules it makes. */
  public readonly apiScheduleGroup: scheduler.ScheduleGroup;
  /** The role EventBridge Scheduler assumes to invoke the submitter for API-made schedules. */
  public readonly schedulerRole: iam.Role;

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
    const submitter = new AutoDevFunction(this, 'Submitter', {
      entry: 'schedules',
      description: 'AutoDev recurring tasks: submit one task per schedule firing',
      environment: props.providers ? { AUTODEV_PROVIDERS: props.providers } : {},
    });
    this.submitter = submitter;
    props.store.grantReadWrite(submitter);
    props.queue.grantSend(submitter);
    this.apiScheduleGroup = new scheduler.ScheduleGroup(this, 'ApiScheduleGroup', {
      // deleting the stack deletes the schedules made through the API; their records stay in the table
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: 'EventBridge Scheduler: invoke the AutoDev submitter for schedules made through the API',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    });
    submitter.grantInvoke(this.schedulerRole);
    for (const r of props.recurring ?? []) {
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

  /**
   * Lets `fn` (the API) manage the schedules of the API group, and only those: create, update,
   * delete and read them, pass the scheduler role and nothing else; sets the env vars it reads.
   */
  grantManageApiSchedules(fn: AutoDevFunction): void {
    const apiSchedules = Stack.of(this).formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${this.apiScheduleGroup.scheduleGroupName}/*`,
    });
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          'scheduler:CreateSchedule',
          'scheduler:UpdateSchedule',
          'scheduler:DeleteSchedule',
          'scheduler:GetSchedule',
        ],
        resources: [apiSchedules],
      }),
    );
    Validations.of(fn).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagValue(this, apiSchedules)}]`,
      reason:
        'The API names each schedule it makes by the schedule id; the actions are limited to the schedules of the API group.',
    });
    this.schedulerRole.grantPassRole(fn.grantPrincipal);
    fn.addEnvironment('SCHEDULE_GROUP_NAME', this.apiScheduleGroup.scheduleGroupName);
    fn.addEnvironment('SCHEDULER_ROLE_ARN', this.schedulerRole.roleArn);
    fn.addEnvironment('SCHEDULE_TARGET_ARN', this.submitter.functionArn);
  }
}
