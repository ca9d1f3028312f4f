import type { Principal } from '../core/access.js';
import { UnauthorizedError } from '../core/errors.js';
import type { Authenticator } from '../core/ports.js';
import { principalFromClaims } from '../local/auth.js';

/**
 * The principal from the claims API Gateway's JWT authorizer already verified
 * (`requestContext.authorizer.jwt.claims`). The gateway checks signature, issuer, audience and
 * expiry; this checks tenant and role, which the handler then enforces again.
 */
export class ClaimsAuthenticator implements Authenticator {
  async authenticate(
    _headers: Record<string, string | undefined>,
    claims?: Record<string, unknown>,
  ): Promise<Principal> {
    if (!claims || Object.keys(claims).length === 0) {
      throw new UnauthorizedError('Send a token: Authorization: Bearer <jwt> from the configured issuer.');
    }
    return principalFromClaims(claims);
  }
}
