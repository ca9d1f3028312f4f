import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Match } from 'aws-cdk-lib/assertions';
import { synthStack } from './synth.js';

describe('TaskEvents: task events on EventBridge and notifications', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'autodev-notif-')), 'notifications.json');
  writeFileSync(file, JSON.stringify([{ tenant: 'acme', kind: 'slack', urlSecret: 'ACME_SLACK' }]));
  const { stack, template } = synthStack({ notifications: file });
  const resolve = (v: unknown) => stack.resolve(v);

  it('routes "Task Finished" from its own bus to the notifier, with a dead-letter queue', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['autodev'], 'detail-type': ['Task Finished'] },
      Targets: [
        Match.objectLike({
          DeadLetterConfig: Match.objectLike({ Arn: Match.anyValue() }),
          RetryPolicy: { MaximumRetryAttempts: 2 },
        }),
      ],
    });
  });

  it('lets the record step publish on that bus only, and tells it the bus name', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'events:PutEvents',
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TaskEventsBus'), 'Arn'] },
          }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp('^WorkflowRecordServiceRole') }],
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('record an attempt'),
      Environment: {
        Variables: Match.objectLike({
          TASK_EVENT_BUS_NAME: { Ref: Match.stringLikeRegexp('^TaskEventsBus') },
        }),
      },
    });
  });

  it('gives the notifier its targets and reads webhook URLs from a secret at run time', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('Slack and Microsoft Teams'),
      Environment: {
        Variables: Match.objectLike({
          NOTIFICATIONS: JSON.stringify([
            { tenant: 'acme', kind: 'slack', urlSecret: 'ACME_SLACK', events: ['succeeded', 'failed'] },
          ]),
          NOTIFICATION_SECRET_ARN: { Ref: Match.stringLikeRegexp('^TaskEventsWebhooks') },
        }),
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
            Resource: { Ref: Match.stringLikeRegexp('^TaskEventsWebhooks') },
          }),
        ]),
      },
    });
    expect(resolve(stack.stackName)).toBe('AutoDev');
  });
});
