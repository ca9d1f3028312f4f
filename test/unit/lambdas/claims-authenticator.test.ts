import { describe, expect, it } from '@jest/globals';
import { ClaimsAuthenticator } from '../../../lib/aws/claims-authenticator.js';
import { UnauthorizedError } from '../../../lib/core/errors.js';

const auth = new ClaimsAuthenticator();

describe('ClaimsAuthenticator (claims verified by the API Gateway JWT authorizer)', () => {
  it('reads tenant and role claims, and the subject', async () => {
    const principal = await auth.authenticate({}, { sub: 'u-1', tenant: 'acme', role: 'operator', aud: 'x' });
    expect(principal).toEqual({ tenant: 'acme', role: 'operator', subject: 'u-1' });
  });

  it("reads Cognito's custom:tenant and custom:role", async () => {
    const principal = await auth.authenticate(
      {},
      { sub: 'u-2', 'custom:tenant': 'globex', 'custom:role': 'viewer' },
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
    await expect(auth.authenticate({}, { sub: 'u', role: 'admin' })).rejects.toThrow(/tenant/);
    await expect(auth.authenticate({}, { sub: 'u', tenant: 'acme', role: 'root' })).rejects.toThrow(/role/);
  });
});
