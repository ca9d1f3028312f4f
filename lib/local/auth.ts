import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { checkTokenLifetime, DEFAULT_MAX_TOKEN_TTL_SECONDS, type Principal } from '../core/access.js';
import { UnauthorizedError } from '../core/errors.js';
import type { Authenticator } from '../core/ports.js';
import { AccessRole } from '../core/schemas.js';

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

/** Turns verified claims into a principal; tenant and role must be present and valid. */
export function principalFromClaims(claims: Record<string, unknown>): Principal {
  const tenant = claims.tenant ?? claims['custom:tenant'];
  const role = AccessRole.safeParse(claims.role ?? claims['custom:role']);
  if (typeof tenant !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(tenant)) {
    throw new UnauthorizedError('The token has no valid tenant claim.');
  }
  if (!role.success) {
    throw new UnauthorizedError(`The token's role claim must be one of ${AccessRole.options.join(', ')}.`);
  }
  return { tenant, role: role.data, subject: typeof claims.sub === 'string' ? claims.sub : 'unknown' };
}

/** Verifies HS256 tokens signed with the local platform's key (jose). */
export class LocalJwtAuthenticator implements Authenticator {
  /** Verified tokens, until they expire: a token is checked once, not on every request. */
  private readonly verified = new Map<string, { principal: Principal; exp: number }>();

  constructor(
    private readonly key: Uint8Array,
    private readonly maxTtlSeconds = DEFAULT_MAX_TOKEN_TTL_SECONDS,
    private readonly cacheSize = 1000,
  ) {}

  async authenticate(headers: Record<string, string | undefined>): Promise<Principal> {
    const auth = headers.authorization ?? headers.Authorization;
    const match = auth?.match(/^Bearer\s+(\S+)$/i);
    if (!match)
      throw new UnauthorizedError('Send a token: Authorization: Bearer <jwt> (see `autodev token`).');
    const token = match[1] as string;
    const hit = this.verified.get(token);
    if (hit && hit.exp > Date.now() / 1000) return hit.principal;
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: LOCAL_ISSUER,
        audience: LOCAL_AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
      });
      checkTokenLifetime(payload, Date.now() / 1000, this.maxTtlSeconds);
      const principal = principalFromClaims(payload);
      if (this.verified.size >= this.cacheSize)
        this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(token, { principal, exp: payload.exp as number });
      return principal;
    } catch (err) {
      if (err instanceof UnauthorizedError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('The token has expired.');
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'exp')
        throw new UnauthorizedError('The token has no expiry (exp); tokens must expire.');
      throw new UnauthorizedError('The token is not valid for this server.');
    }
  }
}
