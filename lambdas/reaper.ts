import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { emit } from '../lib/aws/emf.js';
import { requireEnv } from '../lib/aws/env.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { wakeAllProviders } from '../lib/aws/provider-waiters.js';
import { reap } from '../lib/aws/reaper.js';
import {
  providerLimitsFromEnv,
  rolePoolsFromEnv,
  roles,
  roleWakeDeps,
  taskStoreFromEnv,
  waitingFromEnv,
} from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';

/** Scheduled (EventBridge Scheduler): recovers tasks whose workflow was lost, releases blocked tasks. */
const store = taskStoreFromEnv();
const waiting = waitingFromEnv();
const wake = { health: store, limits: providerLimitsFromEnv(), ...waiting };
// the roles' pools too: slots of lost attempts lapse there as on providers
const roleWake = roleWakeDeps(rolePoolsFromEnv(), waiting);
const deps = {
  store,
  wakeParked: async (now: Date) =>
    (await wakeAllProviders(wake, now.getTime())) + (await wakeAllProviders(roleWake, now.getTime())),
  notifier: new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), requireEnv('TASK_QUEUE_URL')),
  roles,
};

const lambdaHandler = async () => {
  const report = await reap(deps);
  logger.info('reaper pass', { ...report });
  emit(metrics, 'reaped', report.requeued, { action: 'requeued' });
  emit(metrics, 'reaped', report.failed + report.cancelled, { action: 'ended' });
  emit(metrics, 'reaped', report.released, { action: 'released' });
  emit(metrics, 'reaped', report.reannounced, { action: 'reannounced' });
  emit(metrics, 'reaped', report.woken, { action: 'woken' });
  return report;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
