import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { type ApiEvent, createApiHandler } from '../lib/api/handler.js';
import { awsApiServices } from '../lib/aws/api-services.js';
import { apiSettingsFromEnv } from '../lib/aws/api-settings.js';
import { DynamoAuditLog } from '../lib/aws/dynamo-audit.js';
import { DynamoDeliveryLog } from '../lib/aws/dynamo-deliveries.js';
import { DynamoRoleSettings } from '../lib/aws/dynamo-role-settings.js';
import { DynamoScheduleStore } from '../lib/aws/dynamo-schedules.js';
import { DynamoTaskStats } from '../lib/aws/dynamo-task-stats.js';
import { requireEnv } from '../lib/aws/env.js';
import { EventBridgeScheduler } from '../lib/aws/eventbridge-scheduler.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { describeAwsProviders } from '../lib/aws/providers-info.js';
import { providerAvailability, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';
import { ScheduleService } from '../lib/core/schedules.js';
import { formatTraceParent, traceContextFromXray } from '../lib/core/trace-context.js';

/** The task API behind API Gateway: the same handler the local platform serves, on DynamoDB and SQS. */
const store = taskStoreFromEnv();
/** Quotas, claim mapping, clock skew, legal hold: set by the stack from CDK context (lib/infra/api.ts). */
const settings = apiSettingsFromEnv();

/** `/v1/schedules` on EventBridge Scheduler; served where the stack set SCHEDULE_GROUP_NAME. */
const scheduleParts = process.env.SCHEDULE_GROUP_NAME
  ? {
      store: new DynamoScheduleStore({
        client: tracer.captureAWSv3Client(new DynamoDBClient({})),
        tableName: requireEnv('TASKS_TABLE_NAME'),
      }),
      scheduler: new EventBridgeScheduler({
        client: tracer.captureAWSv3Client(new SchedulerClient({})),
        groupName: requireEnv('SCHEDULE_GROUP_NAME'),
        roleArn: requireEnv('SCHEDULER_ROLE_ARN'),
        targetArn: requireEnv('SCHEDULE_TARGET_ARN'),
      }),
    }
  : undefined;
const schedules = scheduleParts ? new ScheduleService(scheduleParts) : undefined;

const providerNames = providerAvailability().names;

/**
 * `POST /v1/webhooks/github`, where the stack set GITHUB_WEBHOOK_SECRET_ARN (its own route, no JWT
 * authorizer): the shared secret from Secrets Manager (Powertools' 5-minute cache), replays refused
 * through the table.
 */
const webhookSecretArn = process.env.GITHUB_WEBHOOK_SECRET_ARN;
const deliveries = new DynamoDeliveryLog(
  tracer.captureAWSv3Client(new DynamoDBClient({})),
  requireEnv('TASKS_TABLE_NAME'),
);

/** The audit trail: items of their own on the task table, and a line in CloudWatch Logs for each. */
const auditLog = new DynamoAuditLog(
  tracer.captureAWSv3Client(new DynamoDBClient({})),
  requireEnv('TASKS_TABLE_NAME'),
);

/** `GET /v1/stats`: computed from a bounded read of the tenant's newest tasks (DynamoDB has no aggregates). */
const stats = new DynamoTaskStats({
  client: tracer.captureAWSv3Client(new DynamoDBClient({})),
  tableName: requireEnv('TASKS_TABLE_NAME'),
});

const services = awsApiServices({
  store,
  auditLog,
  // full-access mode per tenant and agent role, items of their own on the tasks table
  roleSettings: new DynamoRoleSettings(
    tracer.captureAWSv3Client(new DynamoDBClient({})),
    requireEnv('TASKS_TABLE_NAME'),
  ),
  notifier: new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), requireEnv('TASK_QUEUE_URL')),
  settings,
  roles,
  knownProviders: providerAvailability().names,
  schedules: scheduleParts,
  // the task's trace is the X-Ray trace of the request that submitted it (the same 128-bit id)
  traceParent: () => {
    const c = traceContextFromXray(process.env._X_AMZN_TRACE_ID);
    return c && formatTraceParent(c);
  },
});

function build(webhookSecret: string | undefined) {
  return createApiHandler({
    ...services,
    logger,
    schedules,
    stats,
    providers: async () => describeAwsProviders(providerNames, await store.listProviderStates(), Date.now()),
    githubWebhook:
      webhookSecret === undefined
        ? undefined
        : { secret: webhookSecret, tenant: process.env.GITHUB_WEBHOOK_TENANT ?? 'default', deliveries },
  })
    .use(logMetrics(metrics))
    .use(captureLambdaHandler(tracer));
}

let built: { secret: string | undefined; handler: ReturnType<typeof build> } | undefined;

/** The API handler; rebuilt when the webhook secret changes (it is read through the cache). */
export const handler = async (event: ApiEvent, context: Context) => {
  // unreadable (throttled, denied): the webhook answers 503, every other route works
  const secret = webhookSecretArn
    ? await getSecret<string>(webhookSecretArn, { maxAge: 300 }).catch((err: unknown) => {
        logger.error('could not read the GitHub webhook secret', { err: err as Error });
        return undefined;
      })
    : undefined;
  if (!built || built.secret !== secret) built = { secret, handler: build(secret) };
  return built.handler(event, context);
};
