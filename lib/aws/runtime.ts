import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ProviderStateStore } from '../core/provider-health.js';
import { limitsFor, type ProviderLimits, parseProviderLimits } from '../core/provider-slots.js';
import { roleOfQueue, rolePoolLimits, withRoleLimits } from '../core/role-slots.js';
import { BUILT_IN_ROLES } from '../core/roles.js';
import { DEFAULT_ROUTING_POLICY, figuresFrom, parseExploration } from '../core/routing.js';
import type { RoutingDeps } from '../core/workflow-engine.js';
import { createDrivers } from '../worker/drivers/index.js';
import { retentionSecondsFromEnv } from './api-settings.js';
import { DynamoSlotStates, ROLE_SLOTS_PK } from './dynamo-slot-states.js';
import { DynamoTaskStats } from './dynamo-task-stats.js';
import { DynamoTaskStore } from './dynamo-task-store.js';
import { availableProviders, requireEnv } from './env.js';
import { tracer } from './powertools.js';
import { ProviderKeys } from './provider-keys.js';
import {
  DynamoProviderWaiters,
  type ProviderWaiters,
  SfnTaskCallbacks,
  type TaskCallbacks,
  type WakeDeps,
} from './provider-waiters.js';
import { loadProviderSecrets } from './secrets.js';

/** What every AWS entry point shares: the store from TASKS_TABLE_NAME (and AUTODEV_RETENTION_DAYS), roles and providers. */
export function taskStoreFromEnv(): DynamoTaskStore {
  return new DynamoTaskStore({
    client: tracer.captureAWSv3Client(new DynamoDBClient({})),
    tableName: requireEnv('TASKS_TABLE_NAME'),
    retentionSeconds: retentionSecondsFromEnv(),
  });
}

/**
 * The built-in agent roles, with the `maxConcurrent` of ROLE_LIMITS (JSON, core role-slots.ts; the
 * stack sets it from `-c roleLimits=...`); a bad value fails the cold start naming the field.
 */
export const roles = withRoleLimits(BUILT_IN_ROLES, process.env.ROLE_LIMITS, 'ROLE_LIMITS');

/** The agent roles' slot pools (`ROLESLOTS` items of the tasks table), for their `maxConcurrent`. */
export function rolePoolsFromEnv(): ProviderStateStore {
  const doc = DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient({})));
  return new DynamoSlotStates(doc, requireEnv('TASKS_TABLE_NAME'), ROLE_SLOTS_PK);
}

/** Waking the executions parked on the roles' queues (`role:<name>`): the reaper's pass over every pool. */
export function roleWakeDeps(
  pools: ProviderStateStore,
  waiting: { waiters: ProviderWaiters; callbacks: TaskCallbacks },
): WakeDeps {
  return { health: pools, limits: (queue) => rolePoolLimits(roles[roleOfQueue(queue) ?? '']), ...waiting };
}

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

/**
 * Per-provider rate, burst and concurrency from PROVIDER_LIMITS (JSON, core provider-slots.ts; the
 * stack sets it from `-c providerLimits=...`); a bad value fails the cold start naming the field.
 */
export function providerLimitsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): (provider: string) => ProviderLimits {
  const config = parseProviderLimits(env.PROVIDER_LIMITS, 'PROVIDER_LIMITS');
  return (provider) => limitsFor(config, provider);
}

/** Where parked workflow executions wait (the tasks table) and how they are resumed (SendTaskSuccess). */
export function waitingFromEnv(): { waiters: ProviderWaiters; callbacks: TaskCallbacks } {
  return {
    waiters: new DynamoProviderWaiters(
      tracer.captureAWSv3Client(new DynamoDBClient({})),
      requireEnv('TASKS_TABLE_NAME'),
    ),
    callbacks: new SfnTaskCallbacks(tracer.captureAWSv3Client(new SFNClient({}))),
  };
}

/** How long a Lambda container keeps a tenant's routing figures for a role. */
export const ROUTING_CACHE_MS = 60_000;

/**
 * Routing of `provider: "auto"` tasks: the figures from the tasks table (the window's newest tasks
 * of the tenant's role, kept ROUTING_CACHE_MS per container) and ROUTING_EXPLORATION (0 to 1,
 * default 0.1; a bad value fails the cold start naming it).
 */
export function routingFromEnv(env: NodeJS.ProcessEnv = process.env): RoutingDeps {
  const stats = new DynamoTaskStats({
    client: tracer.captureAWSv3Client(new DynamoDBClient({})),
    tableName: requireEnv('TASKS_TABLE_NAME'),
  });
  const policy = {
    ...DEFAULT_ROUTING_POLICY,
    exploration: parseExploration(env.ROUTING_EXPLORATION, 'ROUTING_EXPLORATION'),
  };
  return { figures: figuresFrom(stats, policy.windowDays, ROUTING_CACHE_MS), policy };
}
