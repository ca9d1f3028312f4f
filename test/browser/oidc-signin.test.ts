import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import { TestOidcProvider } from '../security/oidc-provider.js';
import { tempDir } from '../support/local-platform.js';
import { launchChromium, newPage, screenshot, startPlatform } from './support.js';

const CLIENT_ID = 'autodev-web';
const PENDING = 'autodev.oidc.pending';

let browser: Browser;
let idp: TestOidcProvider;
let env: Awaited<ReturnType<typeof startPlatform>>;
let url: string;

/** A code from the authorization endpoint, as a browser would get it, without redeeming it. */
async function codeFor(challenge: string): Promise<string> {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: `${url}/`,
    state: 'sent',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const res = await fetch(`${idp.issuer}/authorize?${q}`, { redirect: 'manual' });
  return new URL(res.headers.get('location') ?? '').searchParams.get('code') ?? '';
}

async function signInMessage(page: Page): Promise<string> {
  return (await (await page.waitForSelector('[data-testid=signin-message]')).textContent()) ?? '';
}

beforeAll(async () => {
  idp = await TestOidcProvider.start();
  idp.signInClaims = { sub: 'dana', tenant: 'acme', role: 'operator' };
  [env, browser] = await Promise.all([
    startPlatform(join(tempDir('autodev-oidc-web-'), 'home'), {
      AUTODEV_OIDC_ISSUER: idp.issuer,
      AUTODEV_OIDC_AUDIENCE: `autodev-api,${CLIENT_ID}`,
      AUTODEV_WEB_OIDC_CLIENT_ID: CLIENT_ID,
    }),
    launchChromium(),
  ]);
  url = env.platform.url;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await env?.platform.close(1000);
  await idp?.close();
});

describe('signing in to the dashboard through the identity provider', () => {
  it('serves the provider in /config.json and lets the page call its origin', async () => {
    // Act
    const config = await fetch(`${url}/config.json`);
    const page = await fetch(`${url}/`);
    // Assert
    expect(await config.json()).toEqual({
      oidc: { issuer: idp.issuer, clientId: CLIENT_ID, scope: 'openid' },
    });
    expect(page.headers.get('content-security-policy')).toContain(`connect-src 'self' ${idp.issuer};`);
  });

  it('signs in with the authorization code and PKCE, and the board shows who signed in', async () => {
    // Arrange
    const { context, page } = await newPage(browser);
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    const before = idp.tokenAnswers.length;
    try {
      // Act
      await page.goto(`${url}/`);
      await page.click('#signin-oidc');
      const who = await page.waitForSelector('[data-testid=whoami]');
      // Assert
      expect(await who.textContent()).toBe('dana · operator · acme');
      expect(idp.tokenAnswers.slice(before)).toEqual(['issued']);
      const authorize = new URL(requested.find((r) => r.startsWith(`${idp.issuer}/authorize`)) ?? '');
      expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
      expect(authorize.searchParams.get('redirect_uri')).toBe(`${url}/`);
      expect(page.url()).toBe(`${url}/`);
      const token = await page.evaluate(() => sessionStorage.getItem('autodev.token'));
      expect(token).toMatch(/^eyJ/);
      expect(requested.filter((r) => r.includes(token as string))).toEqual([]);
      expect(await page.evaluate((k) => sessionStorage.getItem(k), PENDING)).toBeNull();
      await screenshot(page, 'oidc-signed-in');
    } finally {
      await context.close();
    }
  });

  it('refuses an answer whose state is not the one this tab sent, without redeeming its code', async () => {
    // Arrange: this tab started a sign-in; the answer carries a real code but another state
    const { context, page } = await newPage(browser);
    const before = idp.tokenAnswers.length;
    try {
      await page.goto(`${url}/`);
      await page.evaluate(
        (k) => sessionStorage.setItem(k, JSON.stringify({ state: 'mine', verifier: 'v' })),
        PENDING,
      );
      const code = await codeFor('c'.repeat(43));
      // Act
      await page.goto(`${url}/?code=${code}&state=forged`);
      // Assert
      expect(await signInMessage(page)).toMatch(/state/);
      expect(await page.$('[data-testid=whoami]')).toBeNull();
      expect(idp.tokenAnswers.length).toBe(before);
      expect(await page.evaluate(() => sessionStorage.getItem('autodev.token'))).toBeNull();
      expect(page.url()).toBe(`${url}/`);
    } finally {
      await context.close();
    }
  });

  it('does not sign in when the verifier is not the one the challenge was made from', async () => {
    // Arrange: hold the browser at the authorization endpoint, then change the stored verifier
    const { context, page } = await newPage(browser);
    let authorizeUrl = '';
    await page.route(`${idp.issuer}/authorize**`, (route) => {
      authorizeUrl = route.request().url();
      return route.fulfill({ status: 200, contentType: 'text/plain', body: 'held' });
    });
    const before = idp.tokenAnswers.length;
    try {
      await page.goto(`${url}/`);
      await page.click('#signin-oidc');
      await page.waitForURL(`${idp.issuer}/authorize**`);
      await page.unroute(`${idp.issuer}/authorize**`);
      await page.goto(`${url}/`);
      await page.evaluate((k) => {
        const pending = JSON.parse(sessionStorage.getItem(k) ?? '{}');
        sessionStorage.setItem(k, JSON.stringify({ ...pending, verifier: 'x'.repeat(43) }));
      }, PENDING);
      // Act: the provider sends the browser back with a code for the original challenge
      await page.goto(authorizeUrl);
      // Assert
      expect(await signInMessage(page)).toMatch(/did not issue a token: invalid_grant/);
      expect(idp.tokenAnswers.slice(before)).toEqual(['invalid_grant']);
      expect(await page.$('[data-testid=whoami]')).toBeNull();
      expect(await page.evaluate(() => sessionStorage.getItem('autodev.token'))).toBeNull();
    } finally {
      await context.close();
    }
  });
});
