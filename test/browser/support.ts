import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import type { AccessRole } from '../../lib/core/schemas.js';
import { readSigningKey, signLocalToken } from '../../lib/local/auth.js';
import { loadLocalConfig } from '../../lib/local/config.js';
import { type LocalPlatform, startLocalPlatform } from '../../lib/local/platform.js';
import { platformEnv, ROOT } from '../support/local-platform.js';

/** Where the browser tests keep their screenshots (git-ignored). */
export const ARTIFACTS = join(ROOT, 'test-artifacts');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
}

/** The local platform in this process, on 127.0.0.1, with the fake provider CLIs first on PATH. */
export async function startPlatform(home: string, extra: Record<string, string> = {}) {
  const config = loadLocalConfig(platformEnv(home, { AUTODEV_HOST: '127.0.0.1', ...extra }));
  const platform: LocalPlatform = await startLocalPlatform(config);
  const key = readSigningKey(config.keyFile);
  const token = (role: AccessRole, ttl = '1h', tenant = 'acme') =>
    signLocalToken(key, { tenant, role, subject: `${role}-user`, ttl });
  return { platform, config, token };
}

/** A fresh browser context and page (its own sessionStorage). */
export async function newPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  return { context, page: await context.newPage() };
}

/** Signs in through the sign-in page and waits for the board. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('[data-testid=whoami]');
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
