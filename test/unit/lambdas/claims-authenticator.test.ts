import { describe, expect, it } from '@jest/globals';
import { ClaimsAuthenticator, claimMappingFromEnv } from '../../../lib/aws/claims-authenticator.js';
import { UnauthorizedError } from '../../../lib/core/errors.js';

const auth = new ClaimsAuthenticator();
/** API Gateway passes the claims it verified; Cognito's tokens expire within the hour by default. */
const exp = Math.floor(Date.now() / 1000) + 3600;

describe('ClaimsAuthenticator (claims verified by the API Gateway JWT authorizer)', () => {
  it('reads tenant and role claims, and the subject', async () => {
    const principal = await auth.authenticate(
      {},
      { sub: 'u-1', tenant: 'acme', role: 'operator', aud: 'x', exp },
    );
    expect(principal).toEqual({ tenant: 'acme', role: 'operator', subject: 'u-1' });
  });

  it("reads Cognito's custom:tenant and custom:role", async () => {
    const principal = await auth.authenticate(
      {},
      { sub: 'u-2', 'custom:tenant': 'globex', 'custom:role': 'viewer', exp: String(exp) },
    );
    expect(principal).toEqual({ tenant: 'globex', role: 'viewer', subject: 'u-2' });
  });

  it('refuses a request the authorizer did not see, whatever its headers say', async () => {
    await expect(auth.authenticate({ authorization: 'Bearer forged' }, undefined)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    await expect(auth.authenticate({}, {})).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('refuses tokens without a valid tenant or role', async () => {
    await expect(auth.authenticate({}, { sub: 'u', role: 'admin', exp })).rejects.toThrow(/tenant/);
    await expect(auth.authenticate({}, { sub: 'u', tenant: 'acme', role: 'root', exp })).rejects.toThrow(
      /role/,
    );
  });

  it('refuses tokens that never expire or live longer than the cap (401)', async () => {
    const claims = { sub: 'u', tenant: 'acme', role: 'admin' };
    await expect(auth.authenticate({}, claims)).rejects.toThrow(/no expiry/);
    await expect(auth.authenticate({}, { ...claims, exp: 32_503_680_000 })).rejects.toThrow(/longer than/);
    const now = Math.floor(Date.now() / 1000);
    await expect(
      auth.authenticate({}, { ...claims, iat: now - 40 * 86_400, exp: now + 3600 }),
    ).rejects.toThrow(/longer than/);
    await expect(
      new ClaimsAuthenticator(7 * 86_400).authenticate({}, { ...claims, exp: now + 2 * 86_400 }),
    ).resolves.toMatchObject({ tenant: 'acme' });
  });

  it('maps Cognito groups with the configured claim mapping, as API Gateway passes them', async () => {
    // Arrange: the authorizer turns the array claim into the string "[a b]"
    const mapping = claimMappingFromEnv({
      AUTODEV_OIDC_ROLE_CLAIM: 'cognito:groups',
      AUTODEV_OIDC_ROLE_MAP: 'autodev-admins=admin,engineering=submitter',
    });
    const cognito = new ClaimsAuthenticator(undefined, undefined, mapping);
    const claims = { sub: 'u-3', 'custom:tenant': 'acme', exp };
    // Act
    const admin = await cognito.authenticate(
      {},
      { ...claims, 'cognito:groups': '[engineering autodev-admins]' },
    );
    // Assert
    expect(admin).toEqual({ tenant: 'acme', role: 'admin', subject: 'u-3' });
    await expect(cognito.authenticate({}, { ...claims, 'cognito:groups': '[admin]' })).rejects.toThrow(
      /role/,
    );
    await expect(cognito.authenticate({}, { ...claims, role: 'admin' })).rejects.toThrow(/role/);
  });

  it('refuses claims issued or valid only in the future, and claims without a subject', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: 'u', tenant: 'acme', role: 'viewer', exp: now + 3600 };
    await expect(auth.authenticate({}, { ...claims, iat: now + 600 })).rejects.toThrow(/future/);
    await expect(auth.authenticate({}, { ...claims, nbf: now + 600 })).rejects.toThrow(/not valid yet/);
    await expect(auth.authenticate({}, { ...claims, sub: undefined })).rejects.toThrow(/subject/);
    await expect(auth.authenticate({}, { ...claims, iat: now + 10 })).resolves.toMatchObject({
      role: 'viewer',
    });
  });
});
