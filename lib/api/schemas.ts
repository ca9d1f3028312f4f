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
