import { ForbiddenError, UnauthorizedError } from './errors.js';
import type { AccessRole, Priority } from './schemas.js';

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
  /** Approving any epic's plan (a submitter may approve the epics it submitted). */
  | 'task:approve'
  | 'metrics:read'
  | 'schedule:read'
  | 'schedule:manage'
  | 'audit:read'
  /** Turning full-access mode on or off for an agent role (admin only). */
  | 'role:manage'
  | 'tenant:erase';

const POLICY: Record<AccessRole, readonly Action[]> = {
  admin: [
    'task:create',
    'task:read',
    'task:cancel',
    'task:retry',
    'task:approve',
    'metrics:read',
    'schedule:read',
    'schedule:manage',
    'audit:read',
    'role:manage',
    'tenant:erase',
  ],
  operator: [
    'task:create',
    'task:read',
    'task:cancel',
    'task:retry',
    'task:approve',
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

/** Every action the caller's role allows (what a client may offer, e.g. the dashboard's buttons). */
export function allowedActions(principal: Principal): Action[] {
  return [...POLICY[principal.role]];
}

export function authorize(principal: Principal, action: Action): void {
  if (!can(principal, action)) {
    throw new ForbiddenError(`Access role "${principal.role}" may not perform ${action}.`);
  }
}

/** Who may ask for `priority: "high"` unless configured otherwise (`AUTODEV_HIGH_PRIORITY_ROLES`). */
export const DEFAULT_HIGH_PRIORITY_ROLES: readonly AccessRole[] = ['admin', 'operator'];

/**
 * Refuses (403, naming the reason) a caller whose role may not use the priority asked for: `high`
 * jumps the queue of everyone in the tenant, so it is a permission of its own.
 */
export function authorizePriority(
  principal: Principal,
  priority: Priority | undefined,
  highPriorityRoles: readonly AccessRole[] = DEFAULT_HIGH_PRIORITY_ROLES,
  field = 'priority',
): void {
  if (priority !== 'high' || highPriorityRoles.includes(principal.role)) return;
  throw new ForbiddenError(
    `Access role "${principal.role}" may not ask for ${field} "high"; it is kept for ${
      highPriorityRoles.length ? highPriorityRoles.join(', ') : 'no role'
    } (AUTODEV_HIGH_PRIORITY_ROLES).`,
  );
}

/** The longest a token may live unless configured otherwise (`AUTODEV_MAX_TOKEN_TTL`): a day. */
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 24 * 3600;
/**
 * An issuer's clock may run this far ahead of the server's (`nbf`, `iat`) unless configured
 * otherwise (`AUTODEV_CLOCK_SKEW_SECONDS`); `exp` is kept exactly.
 */
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;

/** `30s`, `10m`, `1h`, `7d`, `2w` (or a plain number of seconds) in seconds; undefined if not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = text.trim().match(/^(\d{1,9})\s*(s|m|h|d|w)?$/);
  if (!m) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * unit;
}

/** A time claim as seconds; undefined when absent; 401 when present but not a number. */
function timeClaim(claims: Record<string, unknown>, name: 'exp' | 'nbf' | 'iat'): number | undefined {
  const value = claims[name];
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if ((typeof value !== 'number' && typeof value !== 'string') || !Number.isFinite(n)) {
    throw new UnauthorizedError(`The token's ${name} is not a time.`);
  }
  return n;
}

/**
 * A verified token must be valid now and say when it expires, and not live longer than
 * `maxTtlSeconds`: counted from its `iat` when it has one, and from now. A token that never
 * expires is a key that cannot be taken back; one issued or valid only in the future (beyond the
 * clock skew allowed) was not made by a sane issuer. Throws UnauthorizedError (401).
 */
export function checkTokenLifetime(
  claims: Record<string, unknown>,
  nowSeconds: number,
  maxTtlSeconds: number,
  clockSkewSeconds = DEFAULT_CLOCK_SKEW_SECONDS,
): void {
  const exp = timeClaim(claims, 'exp');
  if (exp === undefined) {
    throw new UnauthorizedError('The token has no expiry (exp); tokens must expire.');
  }
  // the skew forgives an issuer whose clock runs ahead (nbf, iat); an expiry is kept to the second
  if (exp <= nowSeconds) throw new UnauthorizedError('The token has expired.');
  const nbf = timeClaim(claims, 'nbf');
  if (nbf !== undefined && nbf > nowSeconds + clockSkewSeconds) {
    throw new UnauthorizedError('The token is not valid yet (nbf).');
  }
  const iat = timeClaim(claims, 'iat');
  if (iat !== undefined && iat > nowSeconds + clockSkewSeconds) {
    throw new UnauthorizedError('The token was issued in the future (iat).');
  }
  const lifetime = Math.max(exp - nowSeconds, iat !== undefined ? exp - iat : 0);
  if (lifetime > maxTtlSeconds + clockSkewSeconds) {
    throw new UnauthorizedError(
      `The token lives longer than the ${maxTtlSeconds} s this server accepts (AUTODEV_MAX_TOKEN_TTL).`,
    );
  }
}
