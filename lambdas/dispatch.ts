import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { ECSClient } from '@aws-sdk/client-ecs';
import { SFNClient } from '@aws-sdk/client-sfn';
import middy from '@middy/core';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { dispatchMessage } from '../lib/aws/dispatch.js';
import { EcsWorkerStopper } from '../lib/aws/ecs-stopper.js';
import { emit } from '../lib/aws/emf.js';
import { requireEnv } from '../lib/aws/env.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { taskStoreFromEnv } from '../lib/aws/runtime.js';
import { TaskMessage } from '../lib/aws/task-messages.js';
import { StepFunctionsLauncher } from '../lib/aws/workflow-launcher.js';

/** Task-queue consumer (SQS FIFO): admits ready tasks and starts their workflow; stops cancelled workers. */
const store = taskStoreFromEnv();
const deps = {
  store,
  launcher: new StepFunctionsLauncher(
    tracer.captureAWSv3Client(new SFNClient({})),
    requireEnv('STATE_MACHINE_ARN'),
  ),
  stopper: new EcsWorkerStopper(
    tracer.captureAWSv3Client(new ECSClient({})),
    requireEnv('CLUSTER_ARN'),
    store,
  ),
};
const processor = new SqsFifoPartialProcessorAsync();

async function recordHandler(record: SQSRecord): Promise<void> {
  let message: TaskMessage;
  try {
    message = TaskMessage.parse(JSON.parse(record.body));
  } catch (err) {
    // retrying cannot fix a malformed message: drop it, loudly
    logger.error('dropping a malformed task message', { messageId: record.messageId, err: err as Error });
    emit(metrics, 'malformedMessages', 1);
    return;
  }
  const result = await dispatchMessage(deps, message);
  logger.info('task message handled', { taskId: message.taskId, kind: message.kind, ...result });
  if (result.action === 'started' && result.started) emit(metrics, 'tasksAdmitted', 1);
}

const lambdaHandler = async (event: SQSEvent, context: Context) =>
  processPartialResponse(event, recordHandler, processor, { context, skipGroupOnError: true });

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
