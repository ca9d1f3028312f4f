import {
  checkTokenLifetime,
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_MAX_TOKEN_TTL_SECONDS,
  type Principal,
} from '../core/access.js';
import { type ClaimMapping, claimMappingFrom, principalFromClaims } from '../core/claims.js';
import { UnauthorizedError } from '../core/errors.js';
import type { Authenticator } from '../core/ports.js';

/**
 * The claim mapping the API function was deployed with: `AUTODEV_OIDC_TENANT_CLAIM`,
 * `AUTODEV_OIDC_ROLE_CLAIM` (e.g. `cognito:groups`), `AUTODEV_OIDC_ROLE_MAP`; the same settings,
 * read by the same code, as the local platform's OIDC sign-in.
 */
export function claimMappingFromEnv(env: NodeJS.ProcessEnv = process.env): ClaimMapping {
  return claimMappingFrom({
    tenantClaim: env.AUTODEV_OIDC_TENANT_CLAIM,
    roleClaim: env.AUTODEV_OIDC_ROLE_CLAIM,
    roleMap: env.AUTODEV_OIDC_ROLE_MAP,
  });
}

/**
 * The principal from the claims API Gateway's JWT authorizer already verified
 * (`requestContext.authorizer.jwt.claims`). The gateway checks signature, issuer, audience and
 * expiry; this checks that the token has an expiry no further away than the cap (the gateway
 * accepts tokens without one) and no time claim in the future, and maps tenant, role and subject
 * with the configured claim mapping; the handler then enforces them again.
 */
export class ClaimsAuthenticator implements Authenticator {
  constructor(
    private readonly maxTtlSeconds = DEFAULT_MAX_TOKEN_TTL_SECONDS,
    private readonly now: () => number = Date.now,
    private readonly mapping: ClaimMapping = claimMappingFromEnv(),
    private readonly clockSkewSeconds = DEFAULT_CLOCK_SKEW_SECONDS,
  ) {}

  async authenticate(
    _headers: Record<string, string | undefined>,
    claims?: Record<string, unknown>,
  ): Promise<Principal> {
    if (!claims || Object.keys(claims).length === 0) {
      throw new UnauthorizedError('Send a token: Authorization: Bearer <jwt> from the configured issuer.');
    }
    checkTokenLifetime(claims, this.now() / 1000, this.maxTtlSeconds, this.clockSkewSeconds);
    return principalFromClaims(claims, this.mapping);
  }
}
