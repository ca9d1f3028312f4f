import { describe, expect, it } from '@jest/globals';
import {
  NotificationConfig,
  notifyTaskFinished,
  slackMessage,
  targetsFor,
  teamsMessage,
} from '../../../lib/worker/notify.js';
import { makeTask } from '../../support/tasks.js';

const succeeded = makeTask({
  id: 'tsk_1',
  status: 'succeeded',
  prompt: 'Add rate limiting <fast> & safe\nmore words',
  provider: 'claude',
  summary: 'Added a token bucket.',
  branch: 'autodev/tsk_1',
  pullRequest: { url: 'https://github.com/acme/shop/pull/7' },
  usage: { inputTokens: 1000, outputTokens: 200, costUsd: 0.0123 },
});
const failed = makeTask({
  id: 'tsk_2',
  tenant: 'beta',
  status: 'failed',
  error: { code: 'rate_limit', message: 'claude answered 429 three times' },
});

type Call = { url: string; body: unknown };
function fakeFetch(statuses: number[]) {
  const calls: Call[] = [];
  const fn = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), body: JSON.parse(String(init?.body)) });
    const status = statuses.shift() ?? 200;
    return new Response(status === 200 ? 'ok' : 'no', { status });
  }) as typeof fetch;
  return { fn, calls };
}

describe('slackMessage', () => {
  it('has a fallback text, the outcome, the facts and a button to the pull request, escaped for mrkdwn', () => {
    const msg = slackMessage(succeeded, { taskUrl: 'http://127.0.0.1:8001/v1/tasks/tsk_1' });
    expect(msg.text).toBe('AutoDev task succeeded: Add rate limiting &lt;fast&gt; &amp; safe');
    const json = JSON.stringify(msg.blocks);
    expect(json).toContain('Added a token bucket.');
    expect(json).toContain('*Cost*\\n$0.0123');
    expect(msg.blocks.at(-1)).toEqual({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Pull request' },
          url: 'https://github.com/acme/shop/pull/7',
        },
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Task' },
          url: 'http://127.0.0.1:8001/v1/tasks/tsk_1',
        },
      ],
    });
  });

  it('says what failed', () => {
    expect(JSON.stringify(slackMessage(failed))).toContain('rate_limit: claude answered 429 three times');
  });
});

describe('teamsMessage', () => {
  it('is a message with one Adaptive Card carrying the facts and links', () => {
    const msg = teamsMessage(failed);
    expect(msg.type).toBe('message');
    const card = msg.attachments[0];
    expect(card?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(card?.content.type).toBe('AdaptiveCard');
    expect(card?.content.body[0]).toMatchObject({
      text: expect.stringMatching(/^AutoDev task failed/),
      color: 'Attention',
    });
    expect(card?.content.body[2]).toMatchObject({ type: 'FactSet' });
    expect(teamsMessage(succeeded).attachments[0]?.content.actions).toEqual([
      { type: 'Action.OpenUrl', title: 'Pull request', url: 'https://github.com/acme/shop/pull/7' },
    ]);
  });
});

describe('notifyTaskFinished', () => {
  const targets = NotificationConfig.parse([
    { tenant: 'acme', kind: 'slack', url: 'https://hooks.example.com/slack/acme' },
    { tenant: 'beta', kind: 'teams', urlSecret: 'BETA_TEAMS_URL', events: ['failed'] },
    { kind: 'slack', url: 'https://hooks.example.com/slack/all', events: ['failed'] },
  ]);

  it('posts to the targets of the task tenant and event only', async () => {
    // Arrange
    const { fn, calls } = fakeFetch([]);

    // Act
    const acme = await notifyTaskFinished(succeeded, targets, { fetch: fn });
    const beta = await notifyTaskFinished(failed, targets, {
      fetch: fn,
      secrets: { BETA_TEAMS_URL: 'https://teams.example.com/wh/1' },
    });

    // Assert
    expect(acme).toEqual([{ kind: 'slack', host: 'hooks.example.com', ok: true, status: 200 }]);
    expect(beta.map((r) => [r.kind, r.ok])).toEqual([
      ['teams', true],
      ['slack', true],
    ]);
    expect(calls.map((c) => c.url)).toEqual([
      'https://hooks.example.com/slack/acme',
      'https://teams.example.com/wh/1',
      'https://hooks.example.com/slack/all',
    ]);
    expect(calls[1]?.body).toMatchObject({ type: 'message' });
  });

  it('retries once on 429 or 5xx, not on 4xx, and never throws', async () => {
    const one = [
      {
        tenant: '*',
        kind: 'slack' as const,
        url: 'https://hooks.example.com/x',
        events: ['succeeded' as const],
      },
    ];
    const retried = fakeFetch([503, 200]);
    expect(await notifyTaskFinished(succeeded, one, { fetch: retried.fn, retryDelayMs: 1 })).toEqual([
      { kind: 'slack', host: 'hooks.example.com', ok: true, status: 200 },
    ]);
    expect(retried.calls).toHaveLength(2);
    const refused = fakeFetch([404, 200]);
    expect(
      (await notifyTaskFinished(succeeded, one, { fetch: refused.fn, retryDelayMs: 1 }))[0],
    ).toMatchObject({
      ok: false,
      status: 404,
    });
    expect(refused.calls).toHaveLength(1);
    const down = (async () => {
      throw new Error('connect ECONNREFUSED');
    }) as typeof fetch;
    expect((await notifyTaskFinished(succeeded, one, { fetch: down, retryDelayMs: 1 }))[0]).toMatchObject({
      ok: false,
      error: 'connect ECONNREFUSED',
    });
  });

  it('reports a missing URL secret without posting', async () => {
    const { fn, calls } = fakeFetch([]);
    const out = await notifyTaskFinished(failed, targets.slice(1, 2), { fetch: fn, secrets: {} });
    expect(out).toEqual([
      { kind: 'teams', host: '-', ok: false, error: 'the secret BETA_TEAMS_URL is not set' },
    ]);
    expect(calls).toEqual([]);
  });

  it('has nothing to say about tasks that are not finished', () => {
    expect(targetsFor(makeTask({ status: 'running' }), targets)).toEqual([]);
  });

  it('refuses a target with both or neither of url and urlSecret', () => {
    expect(NotificationConfig.safeParse([{ kind: 'slack' }]).success).toBe(false);
    expect(
      NotificationConfig.safeParse([{ kind: 'slack', url: 'https://x.example.com', urlSecret: 'X' }]).success,
    ).toBe(false);
  });
});
