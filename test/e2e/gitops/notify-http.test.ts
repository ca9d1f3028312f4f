import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { NotificationConfig, notifyTaskFinished } from '../../../lib/worker/notify.js';
import { makeTask } from '../../support/tasks.js';

interface Received {
  path: string;
  contentType: string | undefined;
  body: unknown;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A local stand-in for Slack's and Teams' incoming webhooks; answers 503 to the first post when asked. */
async function startHooks(failFirst = false) {
  const received: Received[] = [];
  let posts = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    posts++;
    if (failFirst && posts === 1) {
      res.writeHead(503).end('busy');
      return;
    }
    received.push({
      path: req.url ?? '',
      contentType: req.headers['content-type'],
      body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
    });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

describe('notifications over HTTP', () => {
  it('posts a Slack message and a Teams card as JSON to the tenant webhooks, retrying a busy one', async () => {
    // Arrange
    const hooks = await startHooks(true);
    const targets = NotificationConfig.parse([
      { tenant: 'acme', kind: 'slack', urlSecret: 'ACME_SLACK_URL' },
      { tenant: 'acme', kind: 'teams', url: `${hooks.url}/teams/acme` },
    ]);
    const task = makeTask({ status: 'failed', error: { code: 'timeout', message: 'ran past 600 s' } });

    // Act
    const results = await notifyTaskFinished(task, targets, {
      secrets: { ACME_SLACK_URL: `${hooks.url}/slack/acme` },
      retryDelayMs: 10,
    });

    // Assert
    expect(results.every((r) => r.ok)).toBe(true);
    expect(hooks.received.map((r) => [r.path, r.contentType])).toEqual(
      expect.arrayContaining([
        ['/slack/acme', 'application/json'],
        ['/teams/acme', 'application/json'],
      ]),
    );
    const slack = hooks.received.find((r) => r.path === '/slack/acme')?.body as { text: string };
    expect(slack.text).toMatch(/^AutoDev task failed/);
  });
});
