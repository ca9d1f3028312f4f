import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import { providerKeysFromEnv, roles, taskStoreFromEnv } from '../lib/aws/runtime.js';
import { prepareStep } from '../lib/aws/workflow-steps.js';

/**
 * Workflow step "Prepare": starts the next attempt (provider admitted by provider health, limits,
 * lease) through lib/core, or asks the workflow to wait when no provider admits work.
 */
const store = taskStoreFromEnv();
// a provider is a candidate only with its key in the provider secret
const providerKeys = providerKeysFromEnv();
const deps = { store, roles, health: { store } };

const lambdaHandler = async (event: unknown) => {
  const out = await prepareStep({ ...deps, available: await providerKeys.available() }, event);
  if (out.action === 'run') {
    logger.info('attempt prepared', { ...out.plan });
    metrics.addMetric('AttemptsStarted', MetricUnit.Count, 1);
  } else if (out.action === 'wait') {
    logger.info('waiting for a provider', { ...out });
    metrics.addMetric('AttemptsDeferred', MetricUnit.Count, 1);
  } else logger.info('workflow stops', { ...out });
  return out;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
