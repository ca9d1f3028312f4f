import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BUILT_IN_ROLES } from '../core/roles.js';
import { createDrivers } from '../worker/drivers/index.js';
import { retentionSecondsFromEnv } from './api-settings.js';
import { DynamoTaskStore } from './dynamo-task-store.js';
import { availableProviders, requireEnv } from './env.js';
import { tracer } from './powertools.js';
import { ProviderKeys } from './provider-keys.js';
import { loadProviderSecrets } from './secrets.js';

/** What every AWS entry point shares: the store from TASKS_TABLE_NAME (and AUTODEV_RETENTION_DAYS), roles and providers. */
export function taskStoreFromEnv(): DynamoTaskStore {
  return new DynamoTaskStore({
    client: tracer.captureAWSv3Client(new DynamoDBClient({})),
    tableName: requireEnv('TASKS_TABLE_NAME'),
    retentionSeconds: retentionSecondsFromEnv(),
  });
}

export const roles = BUILT_IN_ROLES;

/** Providers the worker image carries; the rest are never chosen. */
export function providerAvailability(): { names: string[]; available: (p: string) => boolean } {
  const names = availableProviders();
  return { names, available: (p) => names.includes(p) };
}

/**
 * Providers that may take an attempt: in the image and with a key in the provider secret
 * (PROVIDER_SECRET_ARN, read through Powertools' 5-minute cache). Without the variable, the image only.
 */
export function providerKeysFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderKeys {
  const drivers = createDrivers(env);
  const secretArn = env.PROVIDER_SECRET_ARN;
  return new ProviderKeys({
    names: availableProviders(env),
    credentialEnv: (p) => drivers[p]?.credentialEnv,
    load: secretArn ? () => loadProviderSecrets(secretArn) : undefined,
  });
}
