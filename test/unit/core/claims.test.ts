import { describe, expect, it } from '@jest/globals';
import { claimMappingFrom, parseRoleMap, principalFromClaims } from '../../../lib/core/claims.js';
import { ConfigError } from '../../../lib/core/errors.js';

describe('the claim mapping shared by the local OIDC sign-in and the AWS claims authenticator', () => {
  const cognito = claimMappingFrom({
    tenantClaim: 'custom:tenant',
    roleClaim: 'cognito:groups',
    roleMap: 'autodev-admins=admin,autodev-operators=operator,autodev-users=submitter',
  });

  it('maps groups given as an array to the strongest role they stand for', () => {
    const p = principalFromClaims(
      { sub: 'u', 'custom:tenant': 'acme', 'cognito:groups': ['autodev-users', 'autodev-operators'] },
      cognito,
    );
    expect(p).toEqual({ tenant: 'acme', role: 'operator', subject: 'u' });
  });

  it('reads the "[a b]" string API Gateway makes of an array claim', () => {
    const p = principalFromClaims(
      { sub: 'u', 'custom:tenant': 'acme', 'cognito:groups': '[other autodev-admins]' },
      cognito,
    );
    expect(p.role).toBe('admin');
  });

  it('lets role names stand for themselves only when no role map is configured', () => {
    const plain = claimMappingFrom({ roleClaim: 'roles' });
    expect(principalFromClaims({ sub: 'u', tenant: 'acme', roles: ['viewer'] }, plain).role).toBe('viewer');
    expect(() =>
      principalFromClaims({ sub: 'u', 'custom:tenant': 'acme', 'cognito:groups': ['admin'] }, cognito),
    ).toThrow(/role claim/);
  });

  it('refuses a missing subject, a missing or doubled tenant', () => {
    expect(() => principalFromClaims({ tenant: 'acme', role: 'admin' })).toThrow(/subject/);
    expect(() => principalFromClaims({ sub: 'u', role: 'admin' })).toThrow(/tenant/);
    expect(() => principalFromClaims({ sub: 'u', tenant: ['a', 'b'], role: 'admin' })).toThrow(/tenant/);
  });

  it('parses a role map as pairs or JSON, and names what is wrong', () => {
    expect(parseRoleMap('a=admin, b=viewer')).toEqual({ a: 'admin', b: 'viewer' });
    expect(parseRoleMap('{"Org Admins": "admin"}')).toEqual({ 'Org Admins': 'admin' });
    expect(() => parseRoleMap('a=root')).toThrow(ConfigError);
    expect(() => parseRoleMap('a')).toThrow(/not name=role/);
    expect(() => parseRoleMap('{"a":')).toThrow(/not valid JSON/);
  });
});
