import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BUILT_IN_ROLES } from '../core/roles.js';
import { DynamoTaskStore } from './dynamo-task-store.js';
import { availableProviders, requireEnv } from './env.js';
import { tracer } from './powertools.js';

/** What every AWS entry point shares: the store from TASKS_TABLE_NAME, roles and providers. */
export function taskStoreFromEnv(): DynamoTaskStore {
  return new DynamoTaskStore({
    client: tracer.captureAWSv3Client(new DynamoDBClient({})),
    tableName: requireEnv('TASKS_TABLE_NAME'),
  });
}

export const roles = BUILT_IN_ROLES;

/** Providers the worker image carries; the rest are never chosen. */
export function providerAvailability(): { names: string[]; available: (p: string) => boolean } {
  const names = availableProviders();
  return { names, available: (p) => names.includes(p) };
}
