import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { requireEnv } from '../lib/aws/env.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { wakeAllProviders } from '../lib/aws/provider-waiters.js';
import { reap } from '../lib/aws/reaper.js';
import { providerLimitsFromEnv, roles, taskStoreFromEnv, waitingFromEnv } from '../lib/aws/runtime.js';
import { SqsTaskNotifier } from '../lib/aws/sqs-notifier.js';

/** Scheduled (EventBridge Scheduler): recovers tasks whose workflow was lost, releases blocked tasks. */
const store = taskStoreFromEnv();
const wake = { health: store, limits: providerLimitsFromEnv(), ...waitingFromEnv() };
const deps = {
  store,
  wakeParked: (now: Date) => wakeAllProviders(wake, now.getTime()),
  notifier: new SqsTaskNotifier(tracer.captureAWSv3Client(new SQSClient({})), requireEnv('TASK_QUEUE_URL')),
  roles,
};

const lambdaHandler = async () => {
  const report = await reap(deps);
  logger.info('reaper pass', { ...report });
  metrics.addMetric('TasksRequeued', MetricUnit.Count, report.requeued);
  metrics.addMetric('TasksReaped', MetricUnit.Count, report.failed + report.cancelled);
  metrics.addMetric('TasksReleased', MetricUnit.Count, report.released);
  metrics.addMetric('TasksReannounced', MetricUnit.Count, report.reannounced);
  metrics.addMetric('ParkedWoken', MetricUnit.Count, report.woken);
  return report;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
