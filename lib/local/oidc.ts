import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { ClaimMapping } from '../core/claims.js';
import { UnauthorizedError } from '../core/errors.js';

/** Signatures an identity provider's tokens may carry: public-key ones only, never HS* or none. */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

/** The company's identity provider, as the local platform trusts it. */
export interface OidcSettings {
  /** The issuer (`iss`) exactly as its discovery document states it, e.g. `https://login.example.com/`. */
  issuer: string;
  /** Audiences (`aud`) accepted; a token must name one of them. */
  audience: string[];
  mapping: ClaimMapping;
  /** How long fetched keys are used before they are fetched again (ms). */
  jwksMaxAgeMs: number;
  /** At least this long between two fetches of the keys for an unknown `kid` (ms). */
  jwksCooldownMs: number;
}

/** Discovery or key fetches that failed are not retried for this long (ms). */
const DISCOVERY_RETRY_MS = 5_000;
const FETCH_TIMEOUT_MS = 5_000;

interface Discovery {
  issuer?: unknown;
  jwks_uri?: unknown;
}

/**
 * Verifies tokens from an OIDC issuer: its discovery document (`/.well-known/openid-configuration`)
 * names the JWKS, whose keys jose fetches, caches (`jwksMaxAgeMs`) and fetches again once when a
 * token names a `kid` it does not know (key rotation), at most once per `jwksCooldownMs`.
 */
export class OidcIssuer {
  private keys?: JWTVerifyGetKey;
  private discovering?: Promise<JWTVerifyGetKey>;
  private failedAt = 0;

  constructor(
    readonly settings: OidcSettings,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
  ) {}

  get issuer(): string {
    return this.settings.issuer;
  }

  /** The key set, discovered on first use; a failed discovery is tried again after a pause. */
  private async keySet(): Promise<JWTVerifyGetKey> {
    if (this.keys) return this.keys;
    if (!this.discovering) {
      if (Date.now() - this.failedAt < DISCOVERY_RETRY_MS) {
        throw new UnauthorizedError('The identity provider could not be reached; try again shortly.');
      }
      this.discovering = this.discover().finally(() => {
        this.discovering = undefined;
      });
    }
    return this.discovering;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const url = `${this.settings.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = (await res.json()) as Discovery;
      if (doc.issuer !== this.settings.issuer) {
        throw new Error(`the document names the issuer ${JSON.stringify(doc.issuer)}`);
      }
      if (typeof doc.jwks_uri !== 'string') throw new Error('the document has no jwks_uri');
      const jwksUrl = new URL(doc.jwks_uri);
      if (jwksUrl.protocol !== new URL(this.settings.issuer).protocol) {
        throw new Error(`jwks_uri ${jwksUrl.href} does not use the issuer's scheme`);
      }
      this.keys = createRemoteJWKSet(jwksUrl, {
        cacheMaxAge: this.settings.jwksMaxAgeMs,
        cooldownDuration: this.settings.jwksCooldownMs,
        timeoutDuration: FETCH_TIMEOUT_MS,
      });
      return this.keys;
    } catch (err) {
      this.failedAt = Date.now();
      this.log('OIDC discovery failed', { url, err: String((err as Error).message ?? err) });
      throw new UnauthorizedError('The identity provider could not be reached; try again shortly.');
    }
  }

  /** The verified payload; throws what jose throws (mapped to 401 by the caller). */
  async verify(token: string, clockSkewSeconds: number): Promise<JWTPayload> {
    const keys = await this.keySet();
    const { payload } = await jwtVerify(token, keys, {
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      algorithms: OIDC_ALGORITHMS,
      requiredClaims: ['exp', 'sub'],
      clockTolerance: clockSkewSeconds,
    });
    return payload;
  }
}
