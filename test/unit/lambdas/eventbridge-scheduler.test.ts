import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { afterEach, describe, expect, it } from '@jest/globals';
import { mockClient } from 'aws-sdk-client-mock';
import { EventBridgeScheduler } from '../../../lib/aws/eventbridge-scheduler.js';
import type { Schedule } from '../../../lib/core/schedules.js';

const client = mockClient(SchedulerClient);
afterEach(() => {
  client.reset();
});

const ROLE = 'arn:aws:iam::123456789012:role/autodev-scheduler';
const TARGET = 'arn:aws:lambda:eu-west-1:123456789012:function:autodev-submitter';
const scheduler = () =>
  new EventBridgeScheduler({
    client: new SchedulerClient({ region: 'eu-west-1' }),
    groupName: 'autodev-api',
    roleArn: ROLE,
    targetArn: TARGET,
  });
const schedule: Schedule = {
  id: 's0123456789abcdefghjk',
  tenant: 'acme',
  name: 'nightly',
  schedule: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Berlin',
  task: { repo: 'https://github.com/acme/app.git', prompt: 'Update dependencies' },
  createdAt: '2026-11-25T00:00:00.000Z',
  enabled: true,
};

describe('EventBridgeScheduler', () => {
  it('creates one schedule in the group that invokes the submitter with the firing', async () => {
    // Arrange
    client.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn' });
    // Act
    await scheduler().upsert(schedule);
    // Assert
    expect(client.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input)).toEqual([
      {
        Name: 's0123456789abcdefghjk',
        GroupName: 'autodev-api',
        Description: 'AutoDev schedule nightly (tenant acme)',
        ScheduleExpression: 'cron(0 3 * * ? *)',
        ScheduleExpressionTimezone: 'Europe/Berlin',
        State: 'ENABLED',
        FlexibleTimeWindow: { Mode: 'OFF' },
        ActionAfterCompletion: 'NONE',
        Target: {
          Arn: TARGET,
          RoleArn: ROLE,
          Input: JSON.stringify({
            scheduleId: 's0123456789abcdefghjk',
            tenant: 'acme',
            name: 'nightly',
            task: schedule.task,
            scheduledTime: '<aws.scheduler.scheduled-time>',
          }),
          RetryPolicy: { MaximumRetryAttempts: 3 },
        },
      },
    ]);
    expect(client.commandCalls(UpdateScheduleCommand)).toHaveLength(0);
  });

  it('updates a schedule that already exists', async () => {
    client
      .on(CreateScheduleCommand)
      .rejects(new ConflictException({ message: 'exists', Message: 'exists', $metadata: {} }))
      .on(UpdateScheduleCommand)
      .resolves({ ScheduleArn: 'arn' });
    await scheduler().upsert({ ...schedule, enabled: false });
    const update = client.commandCalls(UpdateScheduleCommand)[0]?.args[0].input;
    expect(update).toMatchObject({ Name: schedule.id, GroupName: 'autodev-api', State: 'DISABLED' });
  });

  it('passes other errors on', async () => {
    client.on(CreateScheduleCommand).rejects(new Error('AccessDenied'));
    await expect(scheduler().upsert(schedule)).rejects.toThrow('AccessDenied');
  });

  it('deletes the schedule, and a schedule already gone is not an error', async () => {
    client
      .on(DeleteScheduleCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'gone', Message: 'gone', $metadata: {} }));
    await scheduler().remove(schedule);
    client.on(DeleteScheduleCommand).resolves({});
    await scheduler().remove(schedule);
    expect(client.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input)).toEqual([
      { Name: schedule.id, GroupName: 'autodev-api' },
      { Name: schedule.id, GroupName: 'autodev-api' },
    ]);
  });
});
