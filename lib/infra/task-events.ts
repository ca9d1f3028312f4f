import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { NotificationTarget } from '../worker/notify.js';
import { AutoDevFunction } from './autodev-function.js';

export interface TaskEventsProps {
  /** The workflow's record function: it publishes "Task Finished" once per task end. */
  readonly publisher: AutoDevFunction;
  /** Slack and Teams targets per tenant; webhook URLs live in the `webhooks` secret by name. @default none */
  readonly notifications?: readonly NotificationTarget[];
  /** The API's URL, for links in notices. @default none */
  readonly apiUrl?: string;
}

/**
 * Task events: an EventBridge bus with "Task Finished" (source `autodev`), and a rule that sends
 * them to the notifier (Slack, Microsoft Teams incoming webhooks per tenant). Other consumers can
 * add rules on `bus`.
 */
export class TaskEvents extends Construct {
  public readonly bus: events.EventBus;
  public readonly notifier: AutoDevFunction;
  /** Incoming-webhook URLs by name (`{"ACME_SLACK_URL": "https://hooks.slack.com/..."}`). */
  public readonly webhooks: secretsmanager.Secret;
  public readonly deadLetters: sqs.Queue;

  constructor(scope: Construct, id: string, props: TaskEventsProps) {
    super(scope, id);
    this.bus = new events.EventBus(this, 'Bus', { description: 'AutoDev task events' });
    this.webhooks = new secretsmanager.Secret(this, 'Webhooks', {
      description: 'AutoDev notification webhook URLs by name (JSON object)',
      secretObjectValue: {},
    });
    this.notifier = new AutoDevFunction(this, 'Notifier', {
      entry: 'notify',
      description: 'AutoDev: post finished tasks to Slack and Microsoft Teams',
      environment: {
        NOTIFICATIONS: JSON.stringify(props.notifications ?? []),
        NOTIFICATION_SECRET_ARN: this.webhooks.secretArn,
        ...(props.apiUrl && { API_URL: props.apiUrl }),
      },
    });
    this.webhooks.grantRead(this.notifier);
    this.deadLetters = new sqs.Queue(this, 'NotifierDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    new events.Rule(this, 'TaskFinished', {
      eventBus: this.bus,
      description: 'Finished tasks to the notifier',
      eventPattern: { source: ['autodev'], detailType: ['Task Finished'] },
      targets: [
        new targets.LambdaFunction(this.notifier, { deadLetterQueue: this.deadLetters, retryAttempts: 2 }),
      ],
    });
    this.bus.grantPutEventsTo(props.publisher);
    props.publisher.addEnvironment('TASK_EVENT_BUS_NAME', this.bus.eventBusName);
  }
}
