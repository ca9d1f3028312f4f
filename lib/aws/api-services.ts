import type { ApiDeps } from '../api/handler.js';
import { TenantErasure } from '../core/erasure.js';
import { RoleSettingsService, type RoleSettingsStore } from '../core/role-settings.js';
import type { AgentRole } from '../core/roles.js';
import type { Scheduler, ScheduleStore } from '../core/schedules.js';
import { type TaskNotifier, TaskService } from '../core/tasks.js';
import type { ApiSettings } from './api-settings.js';
import { ClaimsAuthenticator } from './claims-authenticator.js';
import type { DynamoAuditLog } from './dynamo-audit.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';

export interface AwsApiParts {
  store: DynamoTaskStore;
  auditLog: DynamoAuditLog;
  /** Full-access mode per tenant and agent role (DynamoRoleSettings). */
  roleSettings: RoleSettingsStore;
  notifier: TaskNotifier;
  settings: ApiSettings;
  roles: Record<string, AgentRole>;
  knownProviders: readonly string[];
  /** The schedules' store and EventBridge Scheduler, where served. */
  schedules?: { store: ScheduleStore; scheduler: Scheduler };
  now?: () => number;
  /** The trace a submitted task joins (the request's X-Ray trace as a W3C traceparent). */
  traceParent?: () => string | undefined;
}

/**
 * The API function's use cases on DynamoDB, configured from its settings: quotas on submission,
 * the claim mapping and clock skew of the authenticator, the legal hold of erasures. The Lambda entry
 * point and the tests build the handler from the same parts.
 */
export function awsApiServices(
  parts: AwsApiParts,
): Pick<ApiDeps, 'service' | 'authenticator' | 'erasure' | 'auditLog' | 'roleSettings'> {
  const { settings } = parts;
  const now = parts.now ?? Date.now;
  return {
    service: new TaskService({
      store: parts.store,
      notifier: parts.notifier,
      roles: parts.roles,
      knownProviders: parts.knownProviders,
      quotas: settings.quotas,
      // the usdPerDay quota, from the spend the workers' gateways add up per tenant and day
      spend: parts.store,
      traceParent: parts.traceParent,
    }),
    authenticator: new ClaimsAuthenticator(
      settings.maxTokenTtlSeconds,
      now,
      settings.mapping,
      settings.clockSkewSeconds,
    ),
    auditLog: parts.auditLog,
    // `/v1/roles/{role}/full-access`: admins turn it on per role; the worker reads it at each attempt
    roleSettings: new RoleSettingsService(
      parts.roleSettings,
      () => parts.roles,
      () => new Date(now()),
    ),
    erasure: new TenantErasure({
      tasks: parts.store,
      spend: parts.store,
      schedules: parts.schedules,
      audit: parts.auditLog,
      auditHoldDays: settings.auditHoldDays,
    }),
  };
}
