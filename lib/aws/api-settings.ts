import { z } from 'zod';
import { DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_TOKEN_TTL_SECONDS, parseDuration } from '../core/access.js';
import { type ClaimMapping, claimMappingFrom } from '../core/claims.js';
import { DEFAULT_AUDIT_HOLD_DAYS } from '../core/erasure.js';
import { ConfigError } from '../core/errors.js';
import { parseQuotas, type QuotaPolicy } from '../core/quotas.js';
import { DEFAULT_RETENTION_DAYS } from '../core/retention.js';

const days = (def: number) => z.coerce.number().min(0).max(36_500).default(def);

/** The variables the stack sets on the API function from CDK context (see lib/infra/api.ts). */
const ApiEnv = z.object({
  AUTODEV_QUOTAS: z.string().default(''),
  AUTODEV_OIDC_TENANT_CLAIM: z.string().optional(),
  AUTODEV_OIDC_ROLE_CLAIM: z.string().optional(),
  AUTODEV_OIDC_ROLE_MAP: z.string().default(''),
  AUTODEV_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(DEFAULT_CLOCK_SKEW_SECONDS),
  AUTODEV_MAX_TOKEN_TTL: z
    .string()
    .refine((s) => (parseDuration(s) ?? 0) > 0, 'a duration such as 30m, 24h or 7d')
    .optional(),
  AUTODEV_RETENTION_DAYS: days(DEFAULT_RETENTION_DAYS),
  AUTODEV_AUDIT_HOLD_DAYS: days(DEFAULT_AUDIT_HOLD_DAYS),
});

/** What the API function is configured with: the same settings, read by the same code, as the local platform. */
export interface ApiSettings {
  /** Tasks per hour and tasks not yet ended, per tenant (AUTODEV_QUOTAS). */
  quotas: QuotaPolicy;
  /** Which claims hold the tenant and the role (AUTODEV_OIDC_TENANT_CLAIM, _ROLE_CLAIM, _ROLE_MAP). */
  mapping: ClaimMapping;
  clockSkewSeconds: number;
  maxTokenTtlSeconds: number;
  /** Finished tasks and their logs expire this long after (AUTODEV_RETENTION_DAYS; 0: never). */
  retentionDays: number;
  /** Audit entries younger than this survive an erasure (AUTODEV_AUDIT_HOLD_DAYS). */
  auditHoldDays: number;
}

/** Reads and checks the API function's settings once, at cold start; a bad one fails it, naming the variable. */
export function apiSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiSettings {
  const parsed = ApiEnv.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const e = parsed.data;
  return {
    quotas: parseQuotas(e.AUTODEV_QUOTAS),
    mapping: claimMappingFrom({
      tenantClaim: e.AUTODEV_OIDC_TENANT_CLAIM,
      roleClaim: e.AUTODEV_OIDC_ROLE_CLAIM,
      roleMap: e.AUTODEV_OIDC_ROLE_MAP,
    }),
    clockSkewSeconds: e.AUTODEV_CLOCK_SKEW_SECONDS,
    maxTokenTtlSeconds:
      e.AUTODEV_MAX_TOKEN_TTL === undefined
        ? DEFAULT_MAX_TOKEN_TTL_SECONDS
        : (parseDuration(e.AUTODEV_MAX_TOKEN_TTL) as number),
    retentionDays: e.AUTODEV_RETENTION_DAYS,
    auditHoldDays: e.AUTODEV_AUDIT_HOLD_DAYS,
  };
}

/** `AUTODEV_RETENTION_DAYS` as seconds for the task store (every function and the worker); undefined: forever. */
export function retentionSecondsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const parsed = days(DEFAULT_RETENTION_DAYS).safeParse(env.AUTODEV_RETENTION_DAYS);
  if (!parsed.success) {
    throw new ConfigError(`AUTODEV_RETENTION_DAYS: "${env.AUTODEV_RETENTION_DAYS}" is not a number of days.`);
  }
  return parsed.data > 0 ? Math.round(parsed.data * 86_400) : undefined;
}
