import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createApiHandler } from '../lib/api/handler.js';
import { ClaimsAuthenticator } from '../lib/aws/claims-authenticator.js';
import { requireEnv } from '../lib/aws/env.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { providerAvailability, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';
import { TaskService } from '../lib/core/tasks.js';

/** The task API behind API Gateway: the same handler the local platform serves, on DynamoDB and SQS. */
const service = new TaskService({
  store: taskStoreFromEnv(),
  notifier: new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), requireEnv('TASK_QUEUE_URL')),
  roles,
  knownProviders: providerAvailability().names,
  allowLocalRepos: false,
});

export const handler = createApiHandler({ service, authenticator: new ClaimsAuthenticator(), logger })
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
