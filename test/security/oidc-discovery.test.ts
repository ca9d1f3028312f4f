import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DEFAULT_CLAIM_MAPPING } from '../../lib/core/claims.js';
import { UnauthorizedError } from '../../lib/core/errors.js';
import { LocalJwtAuthenticator } from '../../lib/local/auth.js';
import { OidcIssuer } from '../../lib/local/oidc.js';
import { TestOidcProvider } from './oidc-provider.js';

/** What the server trusts of a discovery document, and what it does when the provider is away. */
describe('OIDC discovery', () => {
  let idp: TestOidcProvider;
  const now = () => Math.floor(Date.now() / 1000);
  const settings = (issuer: string) => ({
    issuer,
    audience: ['autodev-api'],
    mapping: DEFAULT_CLAIM_MAPPING,
    jwksMaxAgeMs: 600_000,
    jwksCooldownMs: 30_000,
  });
  const claims = (iss: string) => ({
    iss,
    aud: 'autodev-api',
    sub: 'u',
    tenant: 'acme',
    role: 'viewer',
    exp: now() + 60,
  });
  const authenticate = (oidc: OidcIssuer, token: string) =>
    new LocalJwtAuthenticator(new Uint8Array(32), { oidc }).authenticate({
      authorization: `Bearer ${token}`,
    });

  beforeAll(async () => {
    idp = await TestOidcProvider.start();
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('accepts a token of the configured issuer', async () => {
    const oidc = new OidcIssuer(settings(idp.issuer));
    await expect(authenticate(oidc, await idp.sign(claims(idp.issuer)))).resolves.toMatchObject({
      tenant: 'acme',
    });
  });

  it('refuses every token when the discovery document names another issuer, and never fetches its keys', async () => {
    // Arrange: a second server whose document claims to be the real provider
    const impostor = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: idp.issuer, jwks_uri: `${idp.issuer}/jwks` }));
    });
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    const issuer = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`;
    const before = idp.jwksFetches;
    try {
      // Act
      const result = authenticate(new OidcIssuer(settings(issuer)), await idp.sign(claims(issuer)));
      // Assert
      await expect(result).rejects.toThrow(/identity provider could not be reached/);
      expect(idp.jwksFetches).toBe(before);
    } finally {
      await new Promise((r) => impostor.close(r));
    }
  });

  it('answers 401 while the provider is away, without asking it again at once', async () => {
    // Arrange: nothing listens there
    const down = createServer();
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const issuer = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
    await new Promise((r) => down.close(r));
    const logged: string[] = [];
    const oidc = new OidcIssuer(settings(issuer), (msg) => logged.push(msg));
    const token = await idp.sign(claims(issuer));
    // Act
    const first = authenticate(oidc, token);
    await expect(first).rejects.toBeInstanceOf(UnauthorizedError);
    const second = authenticate(oidc, token);
    // Assert
    await expect(second).rejects.toThrow(/could not be reached/);
    expect(logged).toEqual(['OIDC discovery failed']);
  });
});
