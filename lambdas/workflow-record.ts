import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { providerAvailability, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { recordStep } from '../lib/aws/workflow-steps.js';

/** Workflow step "Record": applies the core decision after an attempt (finish, retry, fail over). */
const store = taskStoreFromEnv();
const deps = { store, roles, available: providerAvailability().available, health: { store } };

const lambdaHandler = async (event: unknown) => {
  const out = await recordStep(deps, event);
  logger.info('attempt recorded', { ...out });
  if (out.next === 'finish') metrics.addMetric(`Tasks_${out.status}`, MetricUnit.Count, 1);
  else metrics.addMetric('Retries', MetricUnit.Count, 1);
  return out;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
