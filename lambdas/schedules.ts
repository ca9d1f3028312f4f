import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { DynamoScheduleStore } from '../lib/aws/dynamo-schedules.js';
import { emit } from '../lib/aws/emf.js';
import { requireEnv } from '../lib/aws/env.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { submitRecurring } from '../lib/aws/recurring.js';
import { providerAvailability, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';
import { TaskService } from '../lib/core/tasks.js';

/**
 * Recurring tasks (EventBridge Scheduler): submits one task per firing, once. Fired by deploy-time
 * recurring tasks and by schedules made through `POST /v1/schedules`.
 */
const service = new TaskService({
  store: taskStoreFromEnv(),
  notifier: new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), requireEnv('TASK_QUEUE_URL')),
  roles,
  knownProviders: providerAvailability().names,
});

const schedules = new DynamoScheduleStore({
  client: tracer.captureAWSv3Client(new DynamoDBClient({})),
  tableName: requireEnv('TASKS_TABLE_NAME'),
});

const lambdaHandler = async (event: unknown) => {
  const submitted = await submitRecurring(service, event, schedules);
  if (!submitted) {
    logger.info('the schedule was deleted or disabled; firing ignored');
    return { skipped: true };
  }
  const { task, created } = submitted;
  logger.info('recurring task submitted', { taskId: task.id, tenant: task.tenant, created });
  if (created) emit(metrics, 'recurringSubmitted', 1);
  return { taskId: task.id, created };
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
