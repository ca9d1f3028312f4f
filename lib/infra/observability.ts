import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRICS } from '../core/metric-names.js';
import type { Api } from './api.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskWorkflow } from './workflow.js';

export interface ObservabilityProps {
  readonly api: Api;
  readonly queue: TaskQueue;
  readonly workflow: TaskWorkflow;
  readonly functions: lambda.IFunction[];
  /** @default 'AutoDev' */
  readonly namespace?: string;
  /** Where alarms are sent (an encrypted SNS topic with this e-mail subscribed). @default no notifications */
  readonly alarmEmail?: string;
}

/** One dashboard (tasks, API, queue, workflow, Lambdas) and the alarms that mean someone should look. */
export class Observability extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly alarmTopic?: sns.Topic;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const ns = props.namespace ?? 'AutoDev';
    const five = Duration.minutes(5);
    // the names of lib/core/metric-names (the same as the local platform's Prometheus metrics)
    const appMetric = (metricName: string, dimensions: Record<string, string> = {}, label?: string) =>
      new cloudwatch.Metric({
        namespace: ns,
        metricName,
        dimensionsMap: { service: 'autodev', ...dimensions },
        statistic: 'Sum',
        period: five,
        label,
      });
    const sm = props.workflow.stateMachine;
    const dlqDepth = props.queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: five });
    const oldest = props.queue.queue.metricApproximateAgeOfOldestMessage({ period: five });
    const failedRuns = sm.metricFailed({ period: five });
    const timedOut = sm.metricTimedOut({ period: five });
    const api5xx = props.api.httpApi.metricServerError({ period: five });

    this.alarms.push(
      new cloudwatch.Alarm(this, 'DeadLetters', {
        alarmDescription:
          'Task messages reached the dead-letter queue: the dispatcher could not handle them.',
        metric: dlqDepth,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      new cloudwatch.Alarm(this, 'QueueBacklog', {
        alarmDescription: 'A ready task waited more than 15 minutes to be dispatched.',
        metric: oldest,
        threshold: 900,
        evaluationPeriods: 2,
      }),
      new cloudwatch.Alarm(this, 'WorkflowFailures', {
        alarmDescription:
          'Task workflow executions failed or timed out (not task failures: the workflow itself).',
        metric: new cloudwatch.MathExpression({
          expression: 'failed + timedOut',
          usingMetrics: { failed: failedRuns, timedOut },
          period: five,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'Api5xx', {
        alarmDescription: 'The task API answered with server errors.',
        metric: api5xx,
        threshold: 5,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
    props.functions.forEach((fn, i) => {
      this.alarms.push(
        new cloudwatch.Alarm(this, `FunctionErrors${i}`, {
          alarmDescription: `Errors in ${fn.node.path}`,
          metric: fn.metricErrors({ period: five }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(1) });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Tasks',
        left: [
          appMetric(METRICS.tasksAdmitted.name, {}, 'admitted'),
          appMetric(METRICS.attemptsStarted.name, {}, 'attempts started'),
          appMetric(METRICS.retries.name, {}, 'retries'),
          ...(['succeeded', 'failed', 'cancelled'] as const).map((status) =>
            appMetric(METRICS.tasksFinished.name, { status }, status),
          ),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Task queue',
        left: [props.queue.queue.metricApproximateNumberOfMessagesVisible({ period: five }), dlqDepth],
        right: [oldest],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Workflow executions',
        left: [
          sm.metricStarted({ period: five }),
          sm.metricSucceeded({ period: five }),
          failedRuns,
          timedOut,
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'API',
        left: [
          props.api.httpApi.metricCount({ period: five }),
          api5xx,
          props.api.httpApi.metricClientError({ period: five }),
        ],
        right: [props.api.httpApi.metricLatency({ period: five, statistic: 'p90' })],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lambda errors',
        left: props.functions.map((fn) => fn.metricErrors({ period: five })),
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda duration p90',
        left: props.functions.map((fn) => fn.metricDuration({ period: five, statistic: 'p90' })),
        width: 12,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
    );
    if (props.alarmEmail) {
      const key = new kms.Key(this, 'AlarmTopicKey', {
        description: 'AutoDev alarm notifications',
        enableKeyRotation: true,
      });
      // CloudWatch publishes alarm notifications into the encrypted topic
      key.addToResourcePolicy(
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
        }),
      );
      const topic = new sns.Topic(this, 'AlarmTopic', { masterKey: key, enforceSSL: true });
      topic.addSubscription(new EmailSubscription(props.alarmEmail));
      for (const alarm of this.alarms) alarm.addAlarmAction(new SnsAction(topic));
      this.alarmTopic = topic;
    }
  }
}
