import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

/** Created once per process and imported by every Lambda entry point. */
export const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'autodev';
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({
  serviceName,
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'AutoDev',
});
export const tracer = new Tracer({ serviceName });
