import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type JWTPayload, SignJWT } from 'jose';
import { LOCAL_AUDIENCE, LOCAL_ISSUER, readSigningKey } from '../../lib/local/auth.js';
import { platformEnv, type RunningServer, startServer, tempDir } from '../support/local-platform.js';
import { newSigningKey, TestOidcProvider } from './oidc-provider.js';

/**
 * Every way a token can be wrong, against both issuers the local platform trusts (its own key and
 * the company's OIDC issuer), through the real HTTP API: each is a 401; the valid ones are 200.
 */
const AUDIENCE = 'autodev-api';
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const without = (claims: JWTPayload, ...names: string[]) =>
  Object.fromEntries(Object.entries(claims).filter(([k]) => !names.includes(k))) as JWTPayload;

describe('the JWT attack matrix', () => {
  let idp: TestOidcProvider;
  let server: RunningServer;
  let devKey: Uint8Array;

  beforeAll(async () => {
    idp = await TestOidcProvider.start();
    server = await startServer(
      platformEnv(join(tempDir('autodev-jwt-'), 'home'), {
        AUTODEV_EXECUTOR: '0',
        AUTODEV_MAX_TOKEN_TTL: '1h',
        AUTODEV_OIDC_ISSUER: idp.issuer,
        AUTODEV_OIDC_AUDIENCE: `other-client,${AUDIENCE}`,
        AUTODEV_OIDC_TENANT_CLAIM: 'org',
        AUTODEV_OIDC_ROLE_CLAIM: 'groups',
        AUTODEV_OIDC_ROLE_MAP: 'autodev-submitters=submitter,autodev-admins=admin',
        AUTODEV_OIDC_JWKS_COOLDOWN_SECONDS: '2',
      }),
    );
    devKey = readSigningKey(join(server.env.AUTODEV_HOME as string, 'signing-key'));
  });

  afterAll(async () => {
    await server?.stop();
    await idp?.close();
  });

  const call = (token: string, path = '/v1/tasks') =>
    fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  const expect401 = async (token: string) => {
    const res = await call(token);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect({ status: res.status, code: body.error?.code }).toEqual({ status: 401, code: 'unauthorized' });
    return body.error.message;
  };

  /** What differs between the two issuers: their claims, their signatures. */
  interface Issuer {
    base(): JWTPayload;
    sign(claims: JWTPayload): Promise<string>;
    tenantClaim: string;
    roleClaim: string;
    /** Claims that make the caller an admin. */
    admin: JWTPayload;
    /** Signed by a key this server does not know, with a `kid` it does not know. */
    signUnknownKey(claims: JWTPayload): Promise<string>;
    /** The HS/RS confusion, or its mirror image: a token signed with the other kind of key. */
    confusion(claims: JWTPayload): Promise<string>;
  }

  const issuers: Record<'dev key' | 'OIDC issuer', Issuer> = {
    'dev key': {
      base: () => ({
        iss: LOCAL_ISSUER,
        aud: LOCAL_AUDIENCE,
        sub: 'alice',
        tenant: 'acme',
        role: 'submitter',
        iat: now(),
        exp: now() + 600,
      }),
      sign: (claims) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(devKey),
      tenantClaim: 'tenant',
      roleClaim: 'role',
      admin: { role: 'admin' },
      signUnknownKey: (claims) =>
        new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'ghost' }).sign(randomBytes(32)),
      // the IdP's private key is a key this server trusts, but never for its own issuer
      confusion: (claims) => idp.sign(claims),
    },
    'OIDC issuer': {
      base: () => ({
        iss: idp.issuer,
        aud: AUDIENCE,
        sub: 'bob@example.com',
        org: 'acme',
        groups: ['engineering', 'autodev-submitters'],
        iat: now(),
        exp: now() + 600,
      }),
      sign: (claims) => idp.sign(claims),
      tenantClaim: 'org',
      roleClaim: 'groups',
      admin: { groups: ['autodev-admins'] },
      signUnknownKey: async (claims) => idp.sign(claims, await newSigningKey('ghost')),
      // HS256 with the RSA public key (as the JWKS publishes it, in PEM) as the HMAC secret
      confusion: (claims) =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', kid: idp.current.kid })
          .sign(new TextEncoder().encode(idp.current.publicPem)),
    },
  };

  describe.each(Object.entries(issuers))('tokens of the %s', (_name, issuer) => {
    const cases: [string, RegExp, () => Promise<string>][] = [
      ['expired', /expired/, () => issuer.sign({ ...issuer.base(), iat: now() - 1200, exp: now() - 600 })],
      [
        'not yet valid (nbf in the future)',
        /not valid yet/,
        () => issuer.sign({ ...issuer.base(), nbf: now() + 600 }),
      ],
      [
        'issued in the future (iat beyond the skew)',
        /issued in the future/,
        () => issuer.sign({ ...issuer.base(), iat: now() + 600, exp: now() + 1200 }),
      ],
      [
        'from the wrong issuer',
        /issuer this server does not trust/,
        () => issuer.sign({ ...issuer.base(), iss: `${issuer.base().iss}-other` }),
      ],
      [
        'for the wrong audience',
        /not valid for this server/,
        () => issuer.sign({ ...issuer.base(), aud: 'another-app' }),
      ],
      [
        'unsigned (alg: none)',
        /not valid for this server/,
        async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(issuer.base())}.`,
      ],
      [
        'signed with the other kind of key (HS/RS confusion)',
        /not valid for this server/,
        () => issuer.confusion(issuer.base()),
      ],
      [
        'signed by an unknown key (unknown kid)',
        /not valid for this server|kid/,
        () => issuer.signUnknownKey(issuer.base()),
      ],
      [
        'tampered with (payload changed after signing)',
        /not valid for this server/,
        async () => {
          const [header, , signature] = (await issuer.sign(issuer.base())).split('.');
          return `${header}.${b64({ ...issuer.base(), ...issuer.admin })}.${signature}`;
        },
      ],
      ['without a tenant', /tenant/, () => issuer.sign(without(issuer.base(), issuer.tenantClaim))],
      ['without a role', /role/, () => issuer.sign(without(issuer.base(), issuer.roleClaim))],
      ['without a subject (sub)', /subject/, () => issuer.sign(without(issuer.base(), 'sub'))],
      ['without an expiry (exp)', /no expiry/, () => issuer.sign(without(issuer.base(), 'exp'))],
      [
        'living longer than the cap (1h)',
        /longer than/,
        () => issuer.sign({ ...issuer.base(), exp: now() + 7200 }),
      ],
      [
        'whose tenant claim names two tenants',
        /tenant/,
        () => issuer.sign({ ...issuer.base(), [issuer.tenantClaim]: ['acme', 'globex'] }),
      ],
    ];

    it.each(cases)('refuses a token %s (401)', async (_case, reason, make) => {
      expect(await expect401(await make())).toMatch(reason);
    });

    it('accepts a valid token (200) and acts as its subject in its tenant', async () => {
      // Arrange
      const token = await issuer.sign(issuer.base());
      // Act
      const list = await call(token);
      const admin = await call(await issuer.sign({ ...issuer.base(), ...issuer.admin }), '/metrics');
      const submitterOnMetrics = await call(token, '/metrics');
      // Assert
      expect(list.status).toBe(200);
      expect(admin.status).toBe(200);
      expect(submitterOnMetrics.status).toBe(403);
    });
  });

  describe('role claims of the OIDC issuer', () => {
    const oidc = issuers['OIDC issuer'];

    it('refuses groups that are not mapped to a role, even one named like a role', async () => {
      await expect401(await oidc.sign({ ...oidc.base(), groups: ['engineering'] }));
      // with a role map configured, only the names it lists count
      await expect401(await oidc.sign({ ...oidc.base(), groups: ['admin'] }));
    });

    it('takes the strongest role the groups map to, and the tenant from the configured claim', async () => {
      // Arrange
      const token = await oidc.sign({
        ...oidc.base(),
        org: 'globex',
        groups: ['autodev-submitters', 'autodev-admins'],
      });
      // Act
      const metrics = await call(token, '/metrics');
      const submitted = await fetch(`${server.url}/v1/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ repo: 'https://github.com/globex/app.git', prompt: 'x' }),
      });
      // Assert
      expect(metrics.status).toBe(200);
      expect(submitted.status).toBe(201);
      expect(await submitted.json()).toMatchObject({ tenant: 'globex', createdBy: 'bob@example.com' });
    });
  });

  describe('key rotation at the OIDC issuer', () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const oidc = () => issuers['OIDC issuer'];
    /** Tokens signed by a key the provider never published, each with a kid of its own. */
    const ghostTokens = async (n: number, prefix: string) => {
      const ghost = await newSigningKey('ghost');
      return Promise.all(
        Array.from({ length: n }, (_, i) => idp.sign(oidc().base(), { ...ghost, kid: `${prefix}-${i}` })),
      );
    };

    it('fetches the keys again once for a new kid, and refuses the retired key', async () => {
      // Arrange: the keys are known, then the provider rotates them
      expect((await call(await oidc().sign(oidc().base()))).status).toBe(200);
      const old = idp.current;
      await idp.rotate('key-2');
      await sleep(2_100); // past the cooldown of 2 s
      const before = idp.jwksFetches;
      // Act
      const fresh = await call(await oidc().sign(oidc().base()));
      const again = await call(await oidc().sign({ ...oidc().base(), jti: 'second' }));
      const retired = await call(await idp.sign(oidc().base(), old));
      // Assert
      expect(fresh.status).toBe(200);
      expect(again.status).toBe(200);
      expect(retired.status).toBe(401);
      expect(idp.jwksFetches).toBe(before + 1);
    });

    it('fetches the keys at most once per cooldown however many unknown kids arrive', async () => {
      // Arrange
      const first = await ghostTokens(20, 'first');
      const then = await ghostTokens(20, 'then');
      await sleep(2_100);
      const before = idp.jwksFetches;
      // Act
      const statuses = await Promise.all(first.map(async (t) => (await call(t)).status));
      const afterBurst = idp.jwksFetches;
      const second = await Promise.all(then.map(async (t) => (await call(t)).status));
      // Assert
      expect(new Set([...statuses, ...second])).toEqual(new Set([401]));
      expect(afterBurst).toBe(before + 1);
      expect(idp.jwksFetches).toBe(afterBurst);
    });
  });
});
