import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { annotateTask, emitRecorded } from '../lib/aws/emf.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { releaseAfterEnd } from '../lib/aws/release-after-end.js';
import {
  providerKeysFromEnv,
  providerLimitsFromEnv,
  rolePoolsFromEnv,
  roles,
  taskStoreFromEnv,
  waitingFromEnv,
} from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';
import { TaskEventPublisher } from '../lib/aws/task-events.js';
import { recordStep } from '../lib/aws/workflow-steps.js';
import type { Task } from '../lib/core/schemas.js';

/** Workflow step "Record": applies the core decision after an attempt (finish, retry, fail over). */
const store = taskStoreFromEnv();
// a provider is a candidate only with its key in the provider secret
const providerKeys = providerKeysFromEnv();
const busName = process.env.TASK_EVENT_BUS_NAME;
const events = busName
  ? new TaskEventPublisher(tracer.captureAWSv3Client(new EventBridgeClient({})), busName)
  : undefined;
const queueUrl = process.env.TASK_QUEUE_URL;
const notifier = queueUrl
  ? new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), queueUrl)
  : undefined;
const deps = {
  store,
  roles,
  health: { store, limits: providerLimitsFromEnv() },
  // an ended attempt gives its role's slot back too (roles' maxConcurrent)
  rolePools: rolePoolsFromEnv(),
  // a freed slot resumes the oldest execution parked on its provider
  waiting: waitingFromEnv(),
  // "Task Finished" for notifications; a chat or bus being down never fails the workflow
  onFinished: async (task: Task) => {
    await events
      ?.taskFinished(task)
      .catch((err) => logger.error('could not publish Task Finished', { taskId: task.id, err }));
    // its dependents (and an epic's sub-tasks) move now; the reaper's pass catches what this misses
    await releaseAfterEnd(store, notifier, task, new Date()).catch((err) =>
      logger.error('could not release dependents', { taskId: task.id, err }),
    );
  },
};

const lambdaHandler = async (event: unknown) => {
  const out = await recordStep({ ...deps, available: await providerKeys.available() }, event);
  const { taskId, attempt } = (event ?? {}) as { taskId?: string; attempt?: number };
  const task = taskId ? await store.getById(taskId) : undefined;
  logger.info('attempt recorded', { ...out, taskId, traceId: task?.traceId });
  if (task && attempt) {
    annotateTask(tracer, task);
    emitRecorded(metrics, task, attempt);
  }
  return out;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
