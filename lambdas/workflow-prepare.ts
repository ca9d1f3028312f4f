import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { providerAvailability, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { prepareStep } from '../lib/aws/workflow-steps.js';

/** Workflow step "Prepare": starts the next attempt (provider, limits, lease) through lib/core. */
const deps = { store: taskStoreFromEnv(), roles, available: providerAvailability().available };

const lambdaHandler = async (event: unknown) => {
  const out = await prepareStep(deps, event);
  if (out.action === 'run') {
    logger.info('attempt prepared', { ...out.plan });
    metrics.addMetric('AttemptsStarted', MetricUnit.Count, 1);
  } else logger.info('workflow stops', { ...out });
  return out;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
