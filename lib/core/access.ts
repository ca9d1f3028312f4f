import { ForbiddenError, UnauthorizedError } from './errors.js';
import type { AccessRole } from './schemas.js';

/** Who called: the tenant and access role come from verified token claims, never from the body. */
export interface Principal {
  tenant: string;
  role: AccessRole;
  subject: string;
}

export type Action =
  | 'task:create'
  | 'task:read'
  | 'task:cancel'
  | 'task:retry'
  | 'metrics:read'
  | 'schedule:read'
  | 'schedule:manage';

const POLICY: Record<AccessRole, readonly Action[]> = {
  admin: [
    'task:create',
    'task:read',
    'task:cancel',
    'task:retry',
    'metrics:read',
    'schedule:read',
    'schedule:manage',
  ],
  operator: [
    'task:create',
    'task:read',
    'task:cancel',
    'task:retry',
    'metrics:read',
    'schedule:read',
    'schedule:manage',
  ],
  submitter: ['task:create', 'task:read', 'task:cancel', 'schedule:read'],
  viewer: ['task:read', 'schedule:read'],
};

export function can(principal: Principal, action: Action): boolean {
  return POLICY[principal.role].includes(action);
}

export function authorize(principal: Principal, action: Action): void {
  if (!can(principal, action)) {
    throw new ForbiddenError(`Access role "${principal.role}" may not perform ${action}.`);
  }
}

/** The longest a token may live unless configured otherwise (`AUTODEV_MAX_TOKEN_TTL`): a day. */
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 24 * 3600;
/** Clocks of issuer and server may differ this much. */
const CLOCK_SKEW_SECONDS = 60;

/** `30s`, `10m`, `1h`, `7d`, `2w` (or a plain number of seconds) in seconds; undefined if not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = text.trim().match(/^(\d{1,9})\s*(s|m|h|d|w)?$/);
  if (!m) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * unit;
}

/**
 * A verified token must say when it expires, and not live longer than `maxTtlSeconds`: counted
 * from its `iat` when it has one, and from now. A token that never expires is a key that cannot be
 * taken back. Throws UnauthorizedError (401).
 */
export function checkTokenLifetime(
  claims: Record<string, unknown>,
  nowSeconds: number,
  maxTtlSeconds: number,
): void {
  const exp = Number(claims.exp);
  if (claims.exp === undefined || claims.exp === null || !Number.isFinite(exp)) {
    throw new UnauthorizedError('The token has no expiry (exp); tokens must expire.');
  }
  const iat = claims.iat === undefined ? undefined : Number(claims.iat);
  const lifetime = Math.max(exp - nowSeconds, iat !== undefined && Number.isFinite(iat) ? exp - iat : 0);
  if (lifetime > maxTtlSeconds + CLOCK_SKEW_SECONDS) {
    throw new UnauthorizedError(
      `The token lives longer than the ${maxTtlSeconds} s this server accepts (AUTODEV_MAX_TOKEN_TTL).`,
    );
  }
}
