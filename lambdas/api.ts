import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createApiHandler } from '../lib/api/handler.js';
import { ClaimsAuthenticator } from '../lib/aws/claims-authenticator.js';
import { DynamoScheduleStore } from '../lib/aws/dynamo-schedules.js';
import { requireEnv } from '../lib/aws/env.js';
import { EventBridgeScheduler } from '../lib/aws/eventbridge-scheduler.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { providerAvailability, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';
import { ScheduleService } from '../lib/core/schedules.js';
import { TaskService } from '../lib/core/tasks.js';

/** The task API behind API Gateway: the same handler the local platform serves, on DynamoDB and SQS. */
const service = new TaskService({
  store: taskStoreFromEnv(),
  notifier: new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), requireEnv('TASK_QUEUE_URL')),
  roles,
  knownProviders: providerAvailability().names,
});

/** `/v1/schedules` on EventBridge Scheduler; served where the stack set SCHEDULE_GROUP_NAME. */
const schedules = process.env.SCHEDULE_GROUP_NAME
  ? new ScheduleService({
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
    })
  : undefined;

export const handler = createApiHandler({
  service,
  authenticator: new ClaimsAuthenticator(),
  logger,
  schedules,
})
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
