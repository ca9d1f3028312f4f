import { describe, expect, it } from '@jest/globals';
import { dashboardCsp } from '../../../lib/core/web-policy.js';
import { loadLocalConfig } from '../../../lib/local/config.js';
import { tempDir } from '../../support/local-platform.js';

const ISSUER = 'http://127.0.0.1:9/realms/eng';

describe("the dashboard's sign-in settings (AUTODEV_WEB_OIDC_*)", () => {
  const load = (env: Record<string, string>) =>
    loadLocalConfig({ AUTODEV_HOME: tempDir('autodev-web-oidc-'), PATH: '/usr/bin:/bin', ...env });

  it('names the issuer, the client and the scope when a client id is set', () => {
    const config = load({
      AUTODEV_OIDC_ISSUER: ISSUER,
      AUTODEV_OIDC_AUDIENCE: 'autodev-api,autodev-web',
      AUTODEV_WEB_OIDC_CLIENT_ID: 'autodev-web',
    });
    expect(config.webSignIn).toEqual({ issuer: ISSUER, clientId: 'autodev-web', scope: 'openid' });
  });

  it('is off without a client id', () => {
    expect(
      load({ AUTODEV_OIDC_ISSUER: ISSUER, AUTODEV_OIDC_AUDIENCE: 'autodev-api' }).webSignIn,
    ).toBeUndefined();
  });

  it('refuses a client id without an issuer, or one the API would not accept as an audience', () => {
    expect(() => load({ AUTODEV_WEB_OIDC_CLIENT_ID: 'autodev-web' })).toThrow(
      /AUTODEV_WEB_OIDC_CLIENT_ID: needs/,
    );
    expect(() =>
      load({
        AUTODEV_OIDC_ISSUER: ISSUER,
        AUTODEV_OIDC_AUDIENCE: 'autodev-api',
        AUTODEV_WEB_OIDC_CLIENT_ID: 'autodev-web',
      }),
    ).toThrow(/AUTODEV_WEB_OIDC_CLIENT_ID: must be one of AUTODEV_OIDC_AUDIENCE/);
  });

  it('lets the page call only its own origin and the listed ones', () => {
    expect(dashboardCsp()).toContain("connect-src 'self';");
    expect(dashboardCsp(['https://login.example.com'])).toContain(
      "connect-src 'self' https://login.example.com;",
    );
  });
});
