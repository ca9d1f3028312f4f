import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeJwt, type JWTPayload, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import {
  checkTokenLifetime,
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_MAX_TOKEN_TTL_SECONDS,
  type Principal,
} from '../core/access.js';
import { type ClaimMapping, DEFAULT_CLAIM_MAPPING, principalFromClaims } from '../core/claims.js';
import { UnauthorizedError } from '../core/errors.js';
import type { Authenticator } from '../core/ports.js';
import type { AccessRole } from '../core/schemas.js';
import type { OidcIssuer } from './oidc.js';

export const LOCAL_ISSUER = 'autodev-local';
export const LOCAL_AUDIENCE = 'autodev';

/** Reads the local signing key, creating it (0600) on first use. Returns the key and whether it was created. */
export function loadOrCreateSigningKey(file: string): { key: Uint8Array; created: boolean } {
  if (existsSync(file))
    return { key: Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url'), created: false };
  mkdirSync(dirname(file), { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64url'), { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { key, created: true };
}

export function readSigningKey(file: string): Uint8Array {
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
}

export async function signLocalToken(
  key: Uint8Array,
  claims: { tenant: string; role: AccessRole; subject: string; ttl: string },
): Promise<string> {
  return new SignJWT({ tenant: claims.tenant, role: claims.role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.subject)
    .setIssuer(LOCAL_ISSUER)
    .setAudience(LOCAL_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(claims.ttl)
    .sign(key);
}

export interface LocalAuthOptions {
  /** The longest lifetime of a token accepted (AUTODEV_MAX_TOKEN_TTL), in seconds. */
  maxTtlSeconds?: number;
  /** How far the issuer's clock may be from this server's (AUTODEV_CLOCK_SKEW_SECONDS). */
  clockSkewSeconds?: number;
  /** The company's identity provider, trusted beside the local key. */
  oidc?: OidcIssuer;
  /** Verified tokens remembered. */
  cacheSize?: number;
}

/**
 * Verifies the local platform's own HS256 tokens (its key) and, when one is configured, tokens of
 * the company's OIDC issuer (public keys only). The token's `iss` picks which; any other issuer is
 * refused, and each issuer is held to its own algorithms, so one kind can never pass for the other.
 */
export class LocalJwtAuthenticator implements Authenticator {
  /** Verified tokens, until they expire: a token is checked once, not on every request. */
  private readonly verified = new Map<string, { principal: Principal; exp: number }>();
  private readonly maxTtlSeconds: number;
  private readonly clockSkewSeconds: number;
  private readonly cacheSize: number;

  constructor(
    private readonly key: Uint8Array,
    private readonly options: LocalAuthOptions = {},
  ) {
    this.maxTtlSeconds = options.maxTtlSeconds ?? DEFAULT_MAX_TOKEN_TTL_SECONDS;
    this.clockSkewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
    this.cacheSize = options.cacheSize ?? 1000;
  }

  async authenticate(headers: Record<string, string | undefined>): Promise<Principal> {
    const auth = headers.authorization ?? headers.Authorization;
    const match = auth?.match(/^Bearer\s+(\S+)$/i);
    if (!match)
      throw new UnauthorizedError('Send a token: Authorization: Bearer <jwt> (see `autodev token`).');
    const token = match[1] as string;
    const hit = this.verified.get(token);
    if (hit && hit.exp > Date.now() / 1000) return hit.principal;
    try {
      const { payload, mapping } = await this.verify(token);
      checkTokenLifetime(payload, Date.now() / 1000, this.maxTtlSeconds, this.clockSkewSeconds);
      const principal = principalFromClaims(payload, mapping);
      if (this.verified.size >= this.cacheSize)
        this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(token, { principal, exp: payload.exp as number });
      return principal;
    } catch (err) {
      throw explain(err);
    }
  }

  private async verify(token: string): Promise<{ payload: JWTPayload; mapping: ClaimMapping }> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new UnauthorizedError('The token is not a JWT.');
    }
    const oidc = this.options.oidc;
    if (oidc && issuer === oidc.issuer) {
      return { payload: await oidc.verify(token, this.clockSkewSeconds), mapping: oidc.settings.mapping };
    }
    if (issuer !== LOCAL_ISSUER)
      throw new UnauthorizedError('The token is from an issuer this server does not trust.');
    const { payload } = await jwtVerify(token, this.key, {
      issuer: LOCAL_ISSUER,
      audience: LOCAL_AUDIENCE,
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
      clockTolerance: this.clockSkewSeconds,
    });
    return { payload, mapping: DEFAULT_CLAIM_MAPPING };
  }
}

/** jose's failures as 401s that say what was wrong, and no more. */
function explain(err: unknown): UnauthorizedError {
  if (err instanceof UnauthorizedError) return err;
  if (err instanceof joseErrors.JWTExpired) return new UnauthorizedError('The token has expired.');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'exp')
      return new UnauthorizedError('The token has no expiry (exp); tokens must expire.');
    if (err.claim === 'nbf') return new UnauthorizedError('The token is not valid yet (nbf).');
    if (err.claim === 'iat') return new UnauthorizedError('The token was issued in the future (iat).');
    if (err.claim === 'sub') return new UnauthorizedError('The token has no subject (sub).');
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return new UnauthorizedError("The token's key (kid) is not one of the identity provider's keys.");
  return new UnauthorizedError('The token is not valid for this server.');
}
