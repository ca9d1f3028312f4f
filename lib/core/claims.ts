import type { Principal } from './access.js';
import { ConfigError, UnauthorizedError } from './errors.js';
import { AccessRole } from './schemas.js';

/**
 * Where a verified token says who the caller is: which claims hold the tenant and the access role,
 * and how the identity provider's names for roles (groups, app roles) map to AutoDev's. The same
 * mapping serves the local platform's OIDC sign-in and the AWS API's claims authenticator.
 */
export interface ClaimMapping {
  /** Claims looked at for the tenant, in order; the first present wins. */
  readonly tenantClaims: readonly string[];
  /** Claims looked at for the role, in order; the first present wins. */
  readonly roleClaims: readonly string[];
  /**
   * Identity-provider names (a group, an app role) → access role. When it is empty, AutoDev's own
   * role names stand for themselves; when it is not, only the names it lists count (a group an
   * identity provider lets people create, named `admin`, grants nothing).
   */
  readonly roleMap: Readonly<Record<string, AccessRole>>;
}

/** The claims AutoDev's own tokens and Cognito's custom attributes use. */
export const DEFAULT_CLAIM_MAPPING: ClaimMapping = {
  tenantClaims: ['tenant', 'custom:tenant'],
  roleClaims: ['role', 'custom:role'],
  roleMap: {},
};

const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Strongest first: a caller in several groups gets the strongest role any of them maps to. */
const STRENGTH: readonly AccessRole[] = ['admin', 'operator', 'submitter', 'viewer'];

/**
 * A claim's values: a string, an array of strings, or the `[a b c]` string API Gateway's JWT
 * authorizer makes of an array claim. Anything else: none.
 */
function claimValues(value: unknown): string[] {
  if (typeof value === 'string') {
    const listed = value.match(/^\[(.*)\]$/s);
    return listed ? (listed[1] as string).split(/[\s,]+/).filter(Boolean) : [value];
  }
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

function firstClaim(claims: Record<string, unknown>, names: readonly string[]): unknown {
  for (const name of names) {
    if (claims[name] !== undefined && claims[name] !== null) return claims[name];
  }
  return undefined;
}

/** The strongest access role the names map to (or are), if any. */
export function mapRole(names: readonly string[], roleMap: Readonly<Record<string, AccessRole>>) {
  const roles = new Set<AccessRole>();
  const mapping = Object.keys(roleMap).length > 0;
  for (const name of names) {
    if (mapping) {
      const mapped = Object.hasOwn(roleMap, name) ? roleMap[name] : undefined;
      if (mapped) roles.add(mapped);
    } else if (AccessRole.safeParse(name).success) roles.add(name as AccessRole);
  }
  return STRENGTH.find((r) => roles.has(r));
}

/**
 * Turns verified claims into a principal: tenant, role and subject (`sub`) must all be there and
 * valid, or the token is refused (401).
 */
export function principalFromClaims(
  claims: Record<string, unknown>,
  mapping: ClaimMapping = DEFAULT_CLAIM_MAPPING,
): Principal {
  const tenants = claimValues(firstClaim(claims, mapping.tenantClaims));
  const tenant = tenants.length === 1 ? tenants[0] : undefined;
  if (tenant === undefined || !TENANT.test(tenant)) {
    throw new UnauthorizedError(
      `The token has no valid tenant claim (${mapping.tenantClaims.join(' or ')}: one tenant name).`,
    );
  }
  const role = mapRole(claimValues(firstClaim(claims, mapping.roleClaims)), mapping.roleMap);
  if (!role) {
    throw new UnauthorizedError(
      `The token's role claim (${mapping.roleClaims.join(' or ')}) names none of ${AccessRole.options.join(', ')} nor a group mapped to one.`,
    );
  }
  const subject = claims.sub;
  if (typeof subject !== 'string' || subject.trim() === '' || subject.length > 256) {
    throw new UnauthorizedError('The token has no subject (sub).');
  }
  return { tenant, role, subject };
}

/**
 * `AUTODEV_OIDC_ROLE_MAP`: `name=role` pairs separated by commas (`autodev-admins=admin,eng=submitter`),
 * or a JSON object `{"name": "role"}`. Throws ConfigError naming what is wrong.
 */
export function parseRoleMap(text: string, variable = 'AUTODEV_OIDC_ROLE_MAP'): Record<string, AccessRole> {
  const trimmed = text.trim();
  if (!trimmed) return {};
  let pairs: [string, unknown][];
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new ConfigError(`${variable}: not valid JSON: ${(err as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(`${variable}: a JSON object {"group": "role"} is expected.`);
    }
    pairs = Object.entries(parsed);
  } else {
    pairs = trimmed
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const at = p.lastIndexOf('=');
        if (at <= 0) throw new ConfigError(`${variable}: "${p}" is not name=role.`);
        return [p.slice(0, at).trim(), p.slice(at + 1).trim()];
      });
  }
  const map: Record<string, AccessRole> = Object.create(null);
  for (const [name, role] of pairs) {
    const parsed = AccessRole.safeParse(role);
    if (!parsed.success) {
      throw new ConfigError(
        `${variable}: "${name}" maps to "${String(role)}", not one of ${AccessRole.options.join(', ')}.`,
      );
    }
    map[name] = parsed.data;
  }
  return map;
}

/** Claim names separated by commas (`roles,groups`); empty: the defaults. */
function parseClaimList(text: string | undefined, defaults: readonly string[]): readonly string[] {
  const names = (text ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  return names.length ? names : defaults;
}

/**
 * The claim mapping from settings (`AUTODEV_OIDC_TENANT_CLAIM`, `AUTODEV_OIDC_ROLE_CLAIM`,
 * `AUTODEV_OIDC_ROLE_MAP`), e.g. `roles`, `cognito:groups` or `groups` for the role.
 */
export function claimMappingFrom(settings: {
  tenantClaim?: string;
  roleClaim?: string;
  roleMap?: string;
}): ClaimMapping {
  return {
    tenantClaims: parseClaimList(settings.tenantClaim, DEFAULT_CLAIM_MAPPING.tenantClaims),
    roleClaims: parseClaimList(settings.roleClaim, DEFAULT_CLAIM_MAPPING.roleClaims),
    roleMap: parseRoleMap(settings.roleMap ?? ''),
  };
}
