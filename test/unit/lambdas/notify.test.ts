import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { notifyFromEvent, targetsFromEnv } from '../../../lib/aws/notifications.js';
import { taskEventDetail } from '../../../lib/aws/task-events.js';
import { makeTask } from '../../support/tasks.js';

let server: Server;
let url: string;
const posts: { path: string; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      posts.push({ path: req.url ?? '', body: JSON.parse(body) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const finished = (status: 'succeeded' | 'failed', tenant = 'acme') => ({
  version: '0',
  id: 'e1',
  source: 'autodev',
  'detail-type': 'Task Finished',
  account: '123456789012',
  region: 'eu-west-1',
  time: new Date().toISOString(),
  resources: [],
  detail: taskEventDetail(makeTask({ status, tenant, prompt: 'x'.repeat(10_000) })),
});

describe('notifier Lambda: EventBridge "Task Finished" to Slack and Teams', () => {
  it("posts to the tenant's targets only, with the webhook URL from the secret", async () => {
    // Arrange
    const targets = targetsFromEnv(
      JSON.stringify([
        { tenant: 'acme', kind: 'slack', urlSecret: 'ACME_SLACK' },
        { tenant: 'acme', kind: 'teams', urlSecret: 'ACME_TEAMS', events: ['failed'] },
        { tenant: 'globex', kind: 'slack', urlSecret: 'GLOBEX_SLACK' },
      ]),
    );
    posts.length = 0;
    // Act
    const results = await notifyFromEvent(finished('succeeded'), targets, {
      secrets: { ACME_SLACK: `${url}/slack`, ACME_TEAMS: `${url}/teams`, GLOBEX_SLACK: `${url}/globex` },
      apiUrl: 'https://api.example.com/',
    });
    // Assert
    expect(results.map((r) => [r.kind, r.ok])).toEqual([['slack', true]]);
    expect(posts.map((p) => p.path)).toEqual(['/slack']);
    expect(JSON.stringify(posts[0]?.body)).toContain('https://api.example.com/v1/tasks/');
  });

  it('cuts long prompts to fit an event', () => {
    expect(finished('failed').detail.prompt.length).toBe(4000);
  });

  it('refuses events that are not AutoDev task events, and bad configuration', async () => {
    await expect(notifyFromEvent({ source: 'aws.s3' }, [], { secrets: {} })).rejects.toThrow(/Task Finished/);
    expect(() => targetsFromEnv('[{"tenant":"acme","kind":"pager"}]')).toThrow(/NOTIFICATIONS/);
  });
});
