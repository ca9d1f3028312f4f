import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { SFNClient } from '@aws-sdk/client-sfn';
import middy from '@middy/core';
import { emit } from '../lib/aws/emf.js';
import { requireEnv } from '../lib/aws/env.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';
import {
  providerKeysFromEnv,
  providerLimitsFromEnv,
  rolePoolsFromEnv,
  roles,
  routingFromEnv,
  taskStoreFromEnv,
  waitingFromEnv,
} from '../lib/aws/runtime.js';
import { StepFunctionsLauncher } from '../lib/aws/workflow-launcher.js';
import { continueStep, parkStep, prepareStep } from '../lib/aws/workflow-steps.js';

/**
 * Workflow steps before an attempt, by `step` in the payload: "prepare" (the default) starts the
 * next attempt (provider admitted by provider health, limits, lease) through lib/core, or says how
 * to wait; "park" registers a parked execution's task token on its full providers; "continue" hands
 * a long wait to a fresh execution.
 */
const store = taskStoreFromEnv();
// a provider is a candidate only with its key in the provider secret
const providerKeys = providerKeysFromEnv();
const deps = {
  store,
  roles,
  health: { store, limits: providerLimitsFromEnv() },
  // provider "auto": chosen from the tenant's recorded outcomes per role
  routing: routingFromEnv(),
  // roles' maxConcurrent (ROLE_LIMITS): a slot of the role's pool before one of the provider's
  rolePools: rolePoolsFromEnv(),
  waiting: waitingFromEnv(),
  launcher: new StepFunctionsLauncher(
    tracer.captureAWSv3Client(new SFNClient({})),
    requireEnv('STATE_MACHINE_ARN'),
  ),
};

const lambdaHandler = async (event: { step?: string }) => {
  const stepDeps = { ...deps, available: await providerKeys.available() };
  if (event.step === 'park') {
    const out = await parkStep(stepDeps, event);
    emit(metrics, 'attemptsParked', 1);
    return out;
  }
  if (event.step === 'continue') {
    const out = await continueStep(stepDeps, event);
    logger.info('long wait continues in a fresh execution', { ...out });
    return out;
  }
  const out = await prepareStep(stepDeps, event);
  if (out.action === 'run') {
    logger.info('attempt prepared', { ...out.plan, startInSeconds: out.startInSeconds });
    emit(metrics, 'attemptsStarted', 1);
  } else if (out.action === 'wait' || out.action === 'park') {
    logger.info('waiting for a provider', { ...out });
    emit(metrics, 'attemptsDeferred', 1);
  } else logger.info('workflow stops', { ...out });
  return out;
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
