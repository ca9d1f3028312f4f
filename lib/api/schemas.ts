import { z } from 'zod';
import type { AuditEntry as AuditEntryType } from '../core/audit.js';
import type { BreakerMode } from '../core/provider-health.js';
import { Schedule } from '../core/schedules.js';
import { Task } from '../core/schemas.js';

/**
 * The bodies the HTTP API answers that lib/core does not already describe: what the OpenAPI
 * description is generated from and what the CLI's client parses answers with.
 */

/** Every error the API answers (4xx and 5xx). */
export const ErrorBody = z.object({
  error: z.object({
    /** Stable, e.g. `validation_failed`, `forbidden`, `not_found`, `quota_exceeded`. */
    code: z.string(),
    message: z.string(),
    /** For `validation_failed`: the fields, as `{ field, message }`. */
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export const Health = z.object({ ok: z.literal(true) });

/** A page of a list: `nextCursor` asks for the next one, absent on the last page. */
const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().optional() });

export const TaskPage = page(Task);
export type TaskPage = z.infer<typeof TaskPage>;

export const SchedulePage = z.object({ items: z.array(Schedule) });
export type SchedulePage = z.infer<typeof SchedulePage>;

export const AuditEntry = z.object({
  id: z.string(),
  at: z.string(),
  tenant: z.string().nullable(),
  subject: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  status: z.number().int(),
  outcome: z.string(),
  requestId: z.string(),
  method: z.string(),
  path: z.string(),
});
export const AuditPage = page(AuditEntry);
export type AuditPage = z.infer<typeof AuditPage>;

/** What is known of one provider CLI (locally also its binary, version and credentials; on AWS not). */
export const ProviderInfo = z.object({
  name: z.string(),
  bin: z.string().optional(),
  path: z.string().optional(),
  version: z.string().optional(),
  model: z.string().optional(),
  credentials: z.enum(['present', 'missing', 'not needed']).optional(),
  credentialEnv: z.array(z.string()).optional(),
  breaker: z.enum(['closed', 'open', 'half_open']),
  /** Share of recent attempts that succeeded; absent before the first attempt. */
  successRate: z.number().min(0).max(1).optional(),
  recentAttempts: z.number().int().nonnegative(),
});
export type ProviderInfo = z.infer<typeof ProviderInfo>;
export const ProviderList = z.object({ items: z.array(ProviderInfo) });

// the schemas above describe the very types the code answers with
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const auditMatches: Same<z.infer<typeof AuditEntry>, AuditEntryType> = true;
void auditMatches;
const breakerMatches: Same<z.infer<typeof ProviderInfo>['breaker'], BreakerMode> = true;
void breakerMatches;

/**
 * `GET /v1/providers/stats`: the figures routing reads, per provider and agent role, from the tenant's
 * attempts of the last `days` days. `successRate` is succeeded / (succeeded + failed): cancelled and
 * abandoned attempts and workspace faults say nothing about the provider. Medians are of the
 * successful attempts (nearest rank).
 */
export const ProviderRoleFigures = z.object({
  provider: z.string(),
  role: z.string(),
  attempts: z.number().int().nonnegative(),
  succeeded: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  successRate: z.number().min(0).max(1).nullable(),
  medianMs: z.number().nonnegative().nullable(),
  medianCostUsd: z.number().nonnegative().nullable(),
  costUsd: z.number().nonnegative(),
});
export type ProviderRoleFigures = z.infer<typeof ProviderRoleFigures>;
export const ProviderStatsPage = z.object({
  tenant: z.string(),
  /** The first day of the window (UTC, `YYYY-MM-DD`). */
  since: z.string(),
  days: z.number().int(),
  items: z.array(ProviderRoleFigures),
});
export type ProviderStatsPage = z.infer<typeof ProviderStatsPage>;

/** `GET /v1/me`: the caller as the token says, and what its role may do. */
export const Me = z.object({
  tenant: z.string(),
  role: z.string(),
  subject: z.string(),
  actions: z.array(z.string()),
});

/** A role's full-access setting in a tenant. */
export const RoleSetting = z.object({
  tenant: z.string(),
  role: z.string(),
  fullAccess: z.boolean(),
  updatedBy: z.string(),
  updatedAt: z.string(),
});
