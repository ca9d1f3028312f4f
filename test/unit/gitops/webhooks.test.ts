import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { TaskSubmission } from '../../../lib/core/schemas.js';
import {
  commandPrompt,
  type DeliveryLog,
  handleGithubWebhook,
  MemoryDeliveryLog,
  signGithubPayload,
  verifyGithubSignature,
} from '../../../lib/core/webhooks.js';
import { SqliteDeliveryLog } from '../../../lib/local/webhook-deliveries.js';
import { tempDir } from '../../support/local-platform.js';

const SECRET = 'webhook-secret-for-tests';
const repository = {
  full_name: 'acme/shop',
  clone_url: 'https://github.com/acme/shop.git',
  default_branch: 'main',
};
const issue = {
  number: 17,
  title: 'Add rate limiting to the orders API',
  body: 'At most 100 requests a minute per client.',
  html_url: 'https://github.com/acme/shop/issues/17',
  labels: [{ name: 'autodev' }, { name: 'backend' }],
};

let n = 0;
function delivery(event: string, payload: unknown, opts: { secret?: string; id?: string } = {}) {
  const rawBody = JSON.stringify(payload);
  return {
    rawBody,
    headers: {
      'X-GitHub-Event': event,
      'X-GitHub-Delivery': opts.id ?? `d-${++n}`,
      'X-Hub-Signature-256': signGithubPayload(opts.secret ?? SECRET, rawBody),
      'Content-Type': 'application/json',
    },
  };
}

describe('verifyGithubSignature', () => {
  it('accepts the HMAC-SHA256 of the exact body and nothing else', () => {
    const body = '{"a":1}';
    const sig = signGithubPayload(SECRET, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifyGithubSignature(SECRET, body, sig)).toBe(true);
    expect(verifyGithubSignature(SECRET, Buffer.from(body), sig)).toBe(true);
    expect(verifyGithubSignature(SECRET, '{"a": 1}', sig)).toBe(false);
    expect(verifyGithubSignature('other', body, sig)).toBe(false);
    expect(verifyGithubSignature(SECRET, body, sig.replace('sha256=', 'sha1='))).toBe(false);
    expect(verifyGithubSignature(SECRET, body, undefined)).toBe(false);
    expect(verifyGithubSignature('', body, signGithubPayload('', body))).toBe(false);
  });
});

describe('handleGithubWebhook', () => {
  it('turns an issue labelled autodev into a valid task submission', async () => {
    // Arrange
    const d = delivery('issues', { action: 'labeled', label: { name: 'autodev' }, issue, repository });

    // Act
    const out = await handleGithubWebhook({ ...d, secret: SECRET, deliveries: new MemoryDeliveryLog() });

    // Assert
    expect(out.status).toBe(202);
    expect(out.submission).toEqual({
      repo: 'https://github.com/acme/shop.git',
      prompt:
        'Add rate limiting to the orders API\n\nAt most 100 requests a minute per client.\n\nGitHub issue: https://github.com/acme/shop/issues/17',
      labels: ['github:acme/shop#17', 'autodev', 'backend'],
    });
    expect(TaskSubmission.safeParse(out.submission).success).toBe(true);
    expect(out.idempotencyKey).toBe('github-event:issues.labeled:acme/shop#17:autodev:');
  });

  it('turns a /autodev comment by a collaborator into a submission with the issue as context', async () => {
    const d = delivery('issue_comment', {
      action: 'created',
      issue,
      repository,
      comment: {
        body: 'Thanks!\n/autodev add the limit to the checkout API too\nand log refusals',
        html_url: 'https://github.com/acme/shop/issues/17#issuecomment-1',
        author_association: 'MEMBER',
        user: { login: 'dana', type: 'User' },
      },
    });
    const out = await handleGithubWebhook({
      ...d,
      secret: SECRET,
      deliveries: new MemoryDeliveryLog(),
      options: { defaults: { role: 'backend', priority: 'high' } },
    });
    expect(out.status).toBe(202);
    expect(out.submission?.prompt).toMatch(
      /^add the limit to the checkout API too\nand log refusals\n\nContext, GitHub issue #17: Add rate limiting/,
    );
    expect(out.submission?.prompt).toContain(
      'Requested in https://github.com/acme/shop/issues/17#issuecomment-1',
    );
    expect(out.submission).toMatchObject({ role: 'backend', priority: 'high', repo: repository.clone_url });
    expect(TaskSubmission.safeParse(out.submission).success).toBe(true);
  });

  it('answers 401 to a bad or missing signature, and records nothing', async () => {
    const deliveries = new MemoryDeliveryLog();
    const payload = { action: 'labeled', label: { name: 'autodev' }, issue, repository };
    const forged = delivery('issues', payload, { secret: 'guessed', id: 'same-id' });
    const out = await handleGithubWebhook({ ...forged, secret: SECRET, deliveries });
    expect(out.status).toBe(401);
    expect(out.submission).toBeUndefined();
    const unsigned = delivery('issues', payload);
    delete (unsigned.headers as Record<string, string | undefined>)['X-Hub-Signature-256'];
    expect((await handleGithubWebhook({ ...unsigned, secret: SECRET, deliveries })).status).toBe(401);
    // the genuine delivery with the same id is still accepted
    const genuine = delivery('issues', payload, { id: 'same-id' });
    expect((await handleGithubWebhook({ ...genuine, secret: SECRET, deliveries })).status).toBe(202);
  });

  it('ignores a replayed delivery id', async () => {
    const deliveries = new MemoryDeliveryLog();
    const d = delivery('issues', { action: 'labeled', label: { name: 'autodev' }, issue, repository });
    const first = await handleGithubWebhook({ ...d, secret: SECRET, deliveries });
    const replay = await handleGithubWebhook({ ...d, secret: SECRET, deliveries });
    expect(first.status).toBe(202);
    expect(replay.status).toBe(200);
    expect(replay.submission).toBeUndefined();
    expect(replay.body).toMatchObject({ ignored: 'replayed delivery' });
  });

  it('ignores a signed body re-sent under a new delivery id', async () => {
    // Arrange: the delivery id is not signed, the body is
    const deliveries = new MemoryDeliveryLog();
    const payload = {
      action: 'labeled',
      label: { name: 'autodev' },
      issue: { ...issue, updated_at: '2026-03-01T10:00:00Z' },
      repository,
    };
    const first = delivery('issues', payload, { id: 'original' });
    const copy = { ...first, headers: { ...first.headers, 'X-GitHub-Delivery': 'forged-new-id' } };
    // Act
    const accepted = await handleGithubWebhook({ ...first, secret: SECRET, deliveries });
    const replay = await handleGithubWebhook({ ...copy, secret: SECRET, deliveries });
    // Assert
    expect(accepted.status).toBe(202);
    expect(replay.status).toBe(200);
    expect(replay.submission).toBeUndefined();
    expect(replay.body).toMatchObject({ ignored: 'event already delivered' });
  });

  it('accepts the label added again later (the issue changed), and a comment once per comment id', async () => {
    const deliveries = new MemoryDeliveryLog();
    const labeled = (updated: string) =>
      delivery('issues', {
        action: 'labeled',
        label: { name: 'autodev' },
        issue: { ...issue, updated_at: updated },
        repository,
      });
    expect(
      (await handleGithubWebhook({ ...labeled('2026-03-01T10:00:00Z'), secret: SECRET, deliveries })).status,
    ).toBe(202);
    expect(
      (await handleGithubWebhook({ ...labeled('2026-03-02T10:00:00Z'), secret: SECRET, deliveries })).status,
    ).toBe(202);
    const comment = (id: number) =>
      delivery('issue_comment', {
        action: 'created',
        issue,
        repository,
        comment: {
          id,
          body: '/autodev fix it',
          html_url: `https://github.com/acme/shop/issues/17#issuecomment-${id}`,
          author_association: 'OWNER',
          user: { login: 'dana', type: 'User' },
        },
      });
    expect((await handleGithubWebhook({ ...comment(5), secret: SECRET, deliveries })).status).toBe(202);
    expect((await handleGithubWebhook({ ...comment(5), secret: SECRET, deliveries })).status).toBe(200);
    expect((await handleGithubWebhook({ ...comment(6), secret: SECRET, deliveries })).status).toBe(202);
  });

  it('refuses a validly signed body that is not UTF-8 with 400', async () => {
    // Arrange: JSON whose title holds a lone 0xff byte, signed over those bytes
    const rawBody = Buffer.concat([
      Buffer.from('{"action":"labeled","label":{"name":"autodev"},"issue":{"number":1,"title":"a'),
      Buffer.from([0xff]),
      Buffer.from(`","html_url":"x","labels":[]},"repository":${JSON.stringify(repository)}}`),
    ]);
    const headers = {
      'X-GitHub-Event': 'issues',
      'X-GitHub-Delivery': 'not-utf8',
      'X-Hub-Signature-256': signGithubPayload(SECRET, rawBody),
      'Content-Type': 'application/json',
    };
    // Act
    const out = await handleGithubWebhook({
      headers,
      rawBody,
      secret: SECRET,
      deliveries: new MemoryDeliveryLog(),
    });
    // Assert
    expect(out.status).toBe(400);
    expect(out.submission).toBeUndefined();
    expect(out.body).toMatchObject({
      error: { code: 'validation_failed', message: 'The body is not UTF-8.' },
    });
  });

  it.each([
    ['another label added', 'issues', { action: 'labeled', label: { name: 'bug' }, issue, repository }],
    ['an issue opened (its labeled event follows)', 'issues', { action: 'opened', issue, repository }],
    ['an edited issue', 'issues', { action: 'edited', issue, repository }],
    [
      'a pull request labelled',
      'issues',
      { action: 'labeled', label: { name: 'autodev' }, issue: { ...issue, pull_request: {} }, repository },
    ],
    [
      'a comment without the command',
      'issue_comment',
      {
        action: 'created',
        issue,
        repository,
        comment: { body: 'autodev please', html_url: 'u', author_association: 'OWNER', user: { login: 'o' } },
      },
    ],
    [
      'a command by an outsider',
      'issue_comment',
      {
        action: 'created',
        issue,
        repository,
        comment: { body: '/autodev rm -rf', html_url: 'u', author_association: 'NONE', user: { login: 'x' } },
      },
    ],
    [
      'a command by a bot',
      'issue_comment',
      {
        action: 'created',
        issue,
        repository,
        comment: {
          body: '/autodev loop',
          html_url: 'u',
          author_association: 'MEMBER',
          user: { login: 'autodev[bot]', type: 'Bot' },
        },
      },
    ],
    [
      'an edited comment',
      'issue_comment',
      {
        action: 'edited',
        issue,
        repository,
        comment: { body: '/autodev x', html_url: 'u', author_association: 'OWNER', user: { login: 'o' } },
      },
    ],
    ['a push event', 'push', { ref: 'refs/heads/main', repository }],
  ])('ignores %s with 200', async (_what, event, payload) => {
    const out = await handleGithubWebhook({
      ...delivery(event, payload),
      secret: SECRET,
      deliveries: new MemoryDeliveryLog(),
    });
    expect(out.status).toBe(200);
    expect(out.submission).toBeUndefined();
    expect(out.body.ignored).toEqual(expect.any(String));
  });

  it('answers ping, 400 for a body that is not an event, and 503 without a secret', async () => {
    const deliveries = new MemoryDeliveryLog();
    expect(
      (await handleGithubWebhook({ ...delivery('ping', { zen: 'x' }), secret: SECRET, deliveries })).body,
    ).toEqual({ ok: true, pong: true });
    const garbage = {
      rawBody: 'not json',
      headers: {
        'x-github-event': 'issues',
        'x-github-delivery': 'g1',
        'x-hub-signature-256': signGithubPayload(SECRET, 'not json'),
      },
    };
    expect((await handleGithubWebhook({ ...garbage, secret: SECRET, deliveries })).status).toBe(400);
    const noIssue = delivery('issues', { action: 'labeled', repository });
    expect((await handleGithubWebhook({ ...noIssue, secret: SECRET, deliveries })).status).toBe(400);
    const noDeliveryId = delivery('issues', {});
    delete (noDeliveryId.headers as Record<string, string | undefined>)['X-GitHub-Delivery'];
    expect((await handleGithubWebhook({ ...noDeliveryId, secret: SECRET, deliveries })).status).toBe(400);
    expect((await handleGithubWebhook({ ...delivery('ping', {}), secret: '', deliveries })).status).toBe(503);
  });

  it('reads form-encoded deliveries too', async () => {
    const payload = JSON.stringify({ action: 'labeled', label: { name: 'autodev' }, issue, repository });
    const rawBody = new URLSearchParams({ payload }).toString();
    const out = await handleGithubWebhook({
      rawBody,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-github-event': 'issues',
        'x-github-delivery': 'form-1',
        'x-hub-signature-256': signGithubPayload(SECRET, rawBody),
      },
      secret: SECRET,
      deliveries: new MemoryDeliveryLog(),
    });
    expect(out.status).toBe(202);
  });

  it('answers 400 to /autodev with no prompt', async () => {
    const d = delivery('issue_comment', {
      action: 'created',
      issue,
      repository,
      comment: { body: '/autodev', html_url: 'u', author_association: 'OWNER', user: { login: 'o' } },
    });
    const out = await handleGithubWebhook({ ...d, secret: SECRET, deliveries: new MemoryDeliveryLog() });
    expect(out.status).toBe(400);
  });
});

describe('commandPrompt', () => {
  it.each([
    ['/autodev fix it', 'fix it'],
    ['hello\n  /autodev   fix it  \nmore detail', 'fix it\nmore detail'],
    ['/autodev', ''],
    ['/autodevx fix', undefined],
    ['please /autodev fix', undefined],
  ])('%j → %j', (body, expected) => {
    expect(commandPrompt(body, '/autodev')).toBe(expected);
  });
});

// ---------------------------------------------------------------- DeliveryLog contract

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

const adapters: [string, () => DeliveryLog][] = [
  ['MemoryDeliveryLog', () => new MemoryDeliveryLog()],
  [
    'SqliteDeliveryLog',
    () => {
      const log = new SqliteDeliveryLog(join(tempDir('autodev-deliveries-'), 'autodev.db'));
      closers.push(() => log.close());
      return log;
    },
  ],
];

describe.each(adapters)('DeliveryLog contract: %s', (_name, make) => {
  it('says false the first time an id is seen, true after', async () => {
    const log = make();
    expect(await log.seen('a')).toBe(false);
    expect(await log.seen('b')).toBe(false);
    expect(await log.seen('a')).toBe(true);
    expect(await log.seen('b')).toBe(true);
  });

  it('lets exactly one of many concurrent calls with one id through', async () => {
    const log = make();
    const results = await Promise.all(Array.from({ length: 20 }, () => log.seen('same')));
    expect(results.filter((r) => !r)).toHaveLength(1);
  });
});

describe('SqliteDeliveryLog', () => {
  it('remembers ids across instances on one file, and forgets them after the retention period', async () => {
    const file = join(tempDir('autodev-deliveries-'), 'autodev.db');
    let now = 1_000_000;
    const first = new SqliteDeliveryLog(file, 60_000, () => now);
    expect(await first.seen('x')).toBe(false);
    first.close();
    const second = new SqliteDeliveryLog(file, 60_000, () => now);
    closers.push(() => second.close());
    expect(await second.seen('x')).toBe(true);
    now += 61_000;
    expect(second.pruneNow()).toBe(1);
    expect(await second.seen('x')).toBe(false);
  });
});

describe('MemoryDeliveryLog', () => {
  it('forgets the oldest ids beyond its capacity', async () => {
    const log = new MemoryDeliveryLog(2);
    await log.seen('1');
    await log.seen('2');
    await log.seen('3');
    expect(await log.seen('1')).toBe(false);
    expect(await log.seen('3')).toBe(true);
  });
});
