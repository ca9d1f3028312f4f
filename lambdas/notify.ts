import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { emit } from '../lib/aws/emf.js';
import { notifyFromEvent, targetsFromEnv } from '../lib/aws/notifications.js';
import { logger, metrics, tracer } from '../lib/aws/powertools.js';

/** EventBridge "Task Finished" → the tenant's Slack and Teams incoming webhooks. */
const targets = targetsFromEnv(process.env.NOTIFICATIONS);

const lambdaHandler = async (event: unknown) => {
  const secretId = process.env.NOTIFICATION_SECRET_ARN;
  const secrets = secretId
    ? ((await getSecret<Record<string, string>>(secretId, { transform: 'json', maxAge: 300 })) ?? {})
    : {};
  const results = await notifyFromEvent(event, targets, { secrets, apiUrl: process.env.API_URL });
  for (const r of results) {
    emit(metrics, 'notifications', 1, { outcome: r.ok ? 'sent' : 'failed' });
    if (!r.ok) logger.warn('a notification was not delivered', { ...r });
  }
  return { sent: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length };
};

export const handler = middy(lambdaHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(captureLambdaHandler(tracer));
