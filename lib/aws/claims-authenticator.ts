import { checkTokenLifetime, DEFAULT_MAX_TOKEN_TTL_SECONDS, type Principal } from '../core/access.js';
import { UnauthorizedError } from '../core/errors.js';
import type { Authenticator } from '../core/ports.js';
import { principalFromClaims } from '../local/auth.js';

/**
 * The principal from the claims API Gateway's JWT authorizer already verified
 * (`requestContext.authorizer.jwt.claims`). The gateway checks signature, issuer, audience and
 * expiry; this checks that the token has an expiry no further away than the cap (the gateway
 * accepts tokens without one), and tenant and role, which the handler then enforces again.
 */
export class ClaimsAuthenticator implements Authenticator {
  constructor(
    private readonly maxTtlSeconds = DEFAULT_MAX_TOKEN_TTL_SECONDS,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(
    _headers: Record<string, string | undefined>,
    claims?: Record<string, unknown>,
  ): Promise<Principal> {
    if (!claims || Object.keys(claims).length === 0) {
      throw new UnauthorizedError('Send a token: Authorization: Bearer <jwt> from the configured issuer.');
    }
    checkTokenLifetime(claims, this.now() / 1000, this.maxTtlSeconds);
    return principalFromClaims(claims);
  }
}
