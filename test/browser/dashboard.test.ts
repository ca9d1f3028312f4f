import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { Task } from '../../lib/core/schemas.js';
import { DASHBOARD_CSP } from '../../lib/local/web-assets.js';
import { makeRemote, tempDir, until } from '../support/local-platform.js';
import { launchChromium, newPage, screenshot, signIn, startPlatform } from './support.js';

let browser: Browser;
let env: Awaited<ReturnType<typeof startPlatform>>;
let url: string;
let remote: string;
let operator: string;
let viewer: string;
/** One page per role, reused by the tests. */
let operatorPage: Page;
let viewerPage: Page;
/** Every URL the pages asked for: a token must never be in one. */
const requested: string[] = [];

async function submit(prompt: string, labels: string[] = []): Promise<Task> {
  const res = await fetch(`${url}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
    body: JSON.stringify({ repo: remote, prompt, labels }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Task;
}

const stored = (id: string) => env.platform.store.get('acme', id) as Promise<Task>;

beforeAll(async () => {
  const dir = tempDir('autodev-browser-');
  remote = makeRemote(dir);
  [env, browser] = await Promise.all([startPlatform(join(dir, 'home')), launchChromium()]);
  url = env.platform.url;
  operator = await env.token('operator');
  viewer = await env.token('viewer');
  operatorPage = (await newPage(browser)).page;
  viewerPage = (await newPage(browser)).page;
  for (const page of [operatorPage, viewerPage]) page.on('request', (r) => requested.push(r.url()));
  await signIn(operatorPage, url, operator);
  await signIn(viewerPage, url, viewer);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await env?.platform.close(1000);
});

describe('the dashboard', () => {
  it('serves its page without a token, with a strict Content-Security-Policy', async () => {
    // Act
    const page = await fetch(`${url}/`);
    const script = await fetch(`${url}/js/app.js`);
    const api = await fetch(`${url}/v1/tasks`);
    const outside = await fetch(`${url}/../package.json`);
    // Assert
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(await page.text()).not.toMatch(/<script>|<script [^>]*>[^<]/);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(api.status).toBe(401);
    expect(outside.status).toBe(401);
  });

  it('shows a submitted task on the board and updates it as it runs', async () => {
    // Arrange
    const page = operatorPage;
    await page.goto(`${url}/#/`);
    // Act: submit through the board's form
    await page.click('details.submit summary');
    await page.fill('#submit-form input[name=repo]', remote);
    await page.fill('#submit-form textarea[name=prompt]', 'Write the release notes [fake:sleep=4000]');
    await page.fill('#submit-form input[name=labels]', 'board-test');
    await page.click('#submit-form button[type=submit]');
    // Assert: the row appears, is seen running, and ends succeeded, with no reload
    const link = await page.waitForSelector('p.ok a');
    const id = (await link.textContent()) as string;
    const row = `tr[data-task-id="${id}"]`;
    await page.waitForSelector(row);
    await page.evaluate('window.stayed = true');
    await page.waitForSelector(`${row} [data-status=running]`, { timeout: 20_000 });
    await screenshot(page, 'board-running');
    await page.waitForSelector(`${row} [data-status=succeeded]`, { timeout: 30_000 });
    expect(await page.evaluate('window.stayed')).toBe(true);
    expect(await page.textContent(row)).toContain('board-test');
    // the label filter keeps it; another label hides it
    await page.fill('#filter-label', 'no-such-label');
    await page.press('#filter-label', 'Enter');
    await page.waitForSelector(row, { state: 'detached' });
    await page.fill('#filter-label', 'board-test');
    await page.press('#filter-label', 'Enter');
    await page.waitForSelector(row);
    await screenshot(page, 'board');
  });

  it('streams a task log line by line while it runs', async () => {
    // Arrange: a task that runs for a few seconds
    const task = await submit('Tidy the changelog [fake:sleep=6000]');
    const page = operatorPage;
    // Act
    await page.goto(`${url}/#/tasks/${task.id}`);
    await page.evaluate('window.stayed = true');
    // Assert: the agent's start is shown while the task still runs, its end later on the same page
    await page.locator('#log', { hasText: /agent process \d+ started/ }).waitFor({ timeout: 20_000 });
    const early = (await page.textContent('#log')) as string;
    expect((await stored(task.id)).status).toBe('running');
    expect(early).not.toContain('pushed');
    await screenshot(page, 'task-running');
    await page.locator('#log', { hasText: /pushed autodev\// }).waitFor({ timeout: 30_000 });
    await page.waitForSelector('[data-testid=task-status] [data-status=succeeded]');
    await page.waitForSelector('[data-testid=log-state]:has-text("ended")');
    expect(await page.evaluate('window.stayed')).toBe(true);
    const log = (await page.textContent('#log')) as string;
    expect(log.startsWith(early)).toBe(true);
    // every line once, in order
    const stored_ = await env.platform.store.readLogs(task.id, 0, 1000);
    expect(log.trim().split('\n')).toEqual(stored_.lines.map((l) => `${l.at} ${l.text}`));
    await screenshot(page, 'task');
  });

  it('cancels a running task', async () => {
    // Arrange
    const task = await submit('Wait forever [fake:hang]');
    // its agent started (a cancel before that ends the task before any agent runs)
    await until(
      async () =>
        (await env.platform.store.readLogs(task.id, 0, 1000)).lines.some((l) =>
          /agent process \d+ started/.test(l.text),
        ),
      30_000,
      'the agent to start',
    );
    const page = operatorPage;
    await page.goto(`${url}/#/tasks/${task.id}`);
    // Act
    await page.click('button[data-action=cancel]');
    // Assert
    await page.waitForSelector('[data-testid=task-status] [data-status=cancelled]', { timeout: 30_000 });
    expect((await stored(task.id)).status).toBe('cancelled');
    await page.waitForSelector('button[data-action=retry]');
    expect(await page.$('button[data-action=cancel]')).toBeNull();
  });

  it('shows a viewer no cancel, retry or submit controls', async () => {
    // Arrange: one task running, one cancelled
    const running = await submit('Keep going [fake:hang]');
    await until(async () => (await stored(running.id)).status === 'running', 20_000, 'the task to run');
    // Act
    await viewerPage.goto(`${url}/#/`);
    await viewerPage.waitForSelector(`tr[data-task-id="${running.id}"] [data-status=running]`);
    await operatorPage.goto(`${url}/#/`);
    await operatorPage.waitForSelector(`tr[data-task-id="${running.id}"] [data-status=running]`);
    // Assert: the operator has the buttons, the viewer none
    expect(
      await operatorPage.$(`tr[data-task-id="${running.id}"] button[data-action=cancel]`),
    ).not.toBeNull();
    expect(await operatorPage.$('details.submit')).not.toBeNull();
    expect(await viewerPage.$$('button[data-action]')).toHaveLength(0);
    expect(await viewerPage.$('details.submit')).toBeNull();
    await viewerPage.goto(`${url}/#/tasks/${running.id}`);
    await viewerPage.waitForSelector('[data-testid=task-status] [data-status=running]');
    expect(await viewerPage.$$('button[data-action]')).toHaveLength(0);
    await screenshot(viewerPage, 'viewer-task');
    // and the API refuses a viewer's cancel anyway
    const res = await fetch(`${url}/v1/tasks/${running.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewer}` },
    });
    expect(res.status).toBe(403);
    await fetch(`${url}/v1/tasks/${running.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}` },
    });
  });

  it('renders a hostile prompt as text, on the board and on the task page', async () => {
    // Arrange
    const hostile =
      '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b> [fake:nochange]';
    const task = await submit(hostile);
    const page = operatorPage;
    // Act
    await page.goto(`${url}/#/`);
    const row = await page.waitForSelector(`tr[data-task-id="${task.id}"]`);
    // Assert
    expect(await row.$('img')).toBeNull();
    expect(await row.$('b')).toBeNull();
    expect(await (await row.$('td.prompt'))?.textContent()).toBe(hostile.slice(0, 120));
    await page.goto(`${url}/#/tasks/${task.id}`);
    const prompt = await page.waitForSelector('[data-testid=prompt]');
    expect(await prompt.textContent()).toBe(hostile);
    expect(await page.$('main img')).toBeNull();
    expect(await page.$('main b')).toBeNull();
    expect(await page.evaluate('window.__xss')).toBeUndefined();
  });

  it('never puts the token in a URL', () => {
    expect(requested.length).toBeGreaterThan(10);
    for (const token of [operator, viewer]) {
      expect(requested.filter((u) => u.includes(token) || u.includes(token.split('.')[2] as string))).toEqual(
        [],
      );
    }
  });

  it('shows the sign-in page for a bad token, and again when the token expires', async () => {
    // Arrange
    const { context, page } = await newPage(browser);
    // Act: a token that is not one
    await page.goto(`${url}/`);
    await page.fill('#token', 'not-a-token');
    await page.click('#signin button[type=submit]');
    // Assert
    const message = await page.waitForSelector('[data-testid=signin-message]');
    expect(await message.textContent()).toContain('not a JWT');
    expect(await page.evaluate(() => sessionStorage.getItem('autodev.token'))).toBeNull();
    await screenshot(page, 'signin-refused');
    // Act: a token that expires while the board is open
    await signIn(page, url, await env.token('viewer', '3s'));
    await page.waitForSelector('[data-testid=tasks]');
    // Assert
    const expired = await page.waitForSelector('[data-testid=signin-message]', { timeout: 10_000 });
    expect(await expired.textContent()).toContain('expired');
    expect(await page.$('[data-testid=tasks]')).toBeNull();
    await context.close();
  });

  it('draws charts, providers, the queue and schedules', async () => {
    // Arrange
    const page = operatorPage;
    const res = await fetch(`${url}/v1/schedules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'nightly',
        schedule: 'cron(0 3 * * ? *)',
        task: { repo: remote, prompt: 'Nightly tidy' },
      }),
    });
    expect(res.status).toBe(201);
    // Act + Assert
    await page.goto(`${url}/#/stats`);
    await page.waitForSelector('[data-testid=charts] svg rect.bar', { state: 'attached' });
    expect(await page.$$('[data-testid=charts] figure')).toHaveLength(3);
    await screenshot(page, 'charts');
    await page.goto(`${url}/#/providers`);
    await page.waitForSelector('[data-testid=providers] tr[data-provider=claude]');
    expect(await page.textContent('[data-testid=queue]')).toContain('Running by role');
    await screenshot(page, 'providers');
    await page.goto(`${url}/#/schedules`);
    await page.waitForSelector('[data-testid=schedules] td:has-text("nightly")');
    await screenshot(page, 'schedules');
  });
});
