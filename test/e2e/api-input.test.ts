import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

describe('the HTTP API refuses bad input with clear 4xx errors, never a 5xx', () => {
  let server: RunningServer;
  let remote: string;
  const tokens: Record<string, string> = {};

  const post = (body: string | object, token = tokens.submitter, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    const dir = tempDir();
    remote = makeRemote(dir);
    // claude is missing here: tasks fail at once (not_installed), so no agent runs while the API is probed
    server = await startServer(platformEnv(join(dir, 'home'), { AUTODEV_CLAUDE_BIN: '/nonexistent/claude' }));
    for (const [name, tenant, role] of [
      ['submitter', 'acme', 'submitter'],
      ['viewer', 'acme', 'viewer'],
      ['other', 'globex', 'admin'],
    ] as const) {
      tokens[name] = (await cli(['token', '--tenant', tenant, '--role', role], server.env)).stdout.trim();
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('answers /healthz without a token', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it.each([
    ['malformed JSON', '{"repo": "x", ', 400, 'validation_failed', /not valid JSON/],
    ['an empty body', '', 400, 'validation_failed', /needs a JSON body/],
    ['missing fields', {}, 400, 'validation_failed', /not valid/],
    [
      'an unknown field',
      { repo: 'https://example.com/a.git', prompt: 'x', colour: 'red' },
      400,
      'validation_failed',
      /not valid/,
    ],
    [
      'an unknown agent role',
      { repo: 'https://example.com/a.git', prompt: 'x', role: 'wizard' },
      400,
      'validation_failed',
      /Unknown agent role "wizard"/,
    ],
    [
      'an unknown provider',
      { repo: 'https://example.com/a.git', prompt: 'x', provider: 'hal' },
      400,
      'validation_failed',
      /Unknown provider "hal"/,
    ],
    [
      'a repo that is not a git URL',
      { repo: 'not a url', prompt: 'x' },
      400,
      'validation_failed',
      /is not a git URL/,
    ],
    [
      'a bad base branch',
      { repo: 'https://example.com/a.git', prompt: 'x', baseBranch: '../etc' },
      400,
      'validation_failed',
      /not valid/,
    ],
    [
      'a negative timeout',
      { repo: 'https://example.com/a.git', prompt: 'x', limits: { timeoutSeconds: -1 } },
      400,
      'validation_failed',
      /not valid/,
    ],
    [
      'a huge prompt',
      { repo: 'https://example.com/a.git', prompt: 'x'.repeat(200_000) },
      413,
      'payload_too_large',
      /limit is 100000/,
    ],
    [
      'a body over 1 MiB',
      { repo: 'https://example.com/a.git', prompt: 'x', labels: ['y'.repeat(2 * 1024 * 1024)] },
      413,
      'payload_too_large',
      /larger than/,
    ],
  ])('refuses %s', async (_name, body, status, code, message) => {
    const res = await post(body as string | object);
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe(code);
    expect(json.error.message).toMatch(message);
    expect(JSON.stringify(json)).not.toMatch(/at .*\.js:\d+/); // no stack traces
  });

  it.each([
    ['a NUL byte in repo', { repo: 'https://example.com/a\u0000.git' }, 'repo'],
    ['a line break in repo', { repo: 'https://example.com/a.git\n--upload-pack=x' }, 'repo'],
    ['a repo that begins with "-"', { repo: '--upload-pack=touch /tmp/x' }, 'repo'],
    ['a NUL byte in prompt', { prompt: 'fix\u0000it' }, 'prompt'],
    ['an escape character in prompt', { prompt: 'fix \u001b[2J it' }, 'prompt'],
    ['a C1 control in prompt', { prompt: 'fix \u009b it' }, 'prompt'],
    ['a NUL byte in baseBranch', { baseBranch: 'main\u0000' }, 'baseBranch'],
    ...[
      'a//b',
      'a/.b',
      'a.',
      '@',
      '..',
      'a.lock',
      '-b',
      '--orphan',
      'a b',
      'a~1',
      'a^',
      'a:b',
      'a?',
      'a*',
      'a[',
      'a\\b',
    ].map((b) => [`the base branch ${JSON.stringify(b)}`, { baseBranch: b }, 'baseBranch'] as const),
    ['a control character in a label', { labels: ['a\u0007'] }, 'labels.0'],
  ])('refuses %s with 400 naming the field', async (_what, fields, field) => {
    const res = await post({ repo: remote, prompt: 'x', ...fields });
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: string; details: { field: string }[] } };
    expect(json.error.code).toBe('validation_failed');
    expect(json.error.details.map((d) => d.field)).toContain(field);
  });

  it('accepts tabs and line breaks (CRLF too) in a prompt', async () => {
    const res = await post({ repo: remote, prompt: 'Fix it:\r\n\t- the first thing\n\t- the second' });
    expect(res.status).toBe(201);
  });

  it('names the offending fields', async () => {
    const res = await post({ prompt: '' });
    const json = (await res.json()) as { error: { details: { field: string }[] } };
    expect(json.error.details.map((d) => d.field).sort()).toEqual(['prompt', 'repo']);
  });

  it('asks for a token (401) and refuses a bad one', async () => {
    expect((await fetch(`${server.url}/v1/tasks`)).status).toBe(401);
    const forged = `${tokens.submitter?.slice(0, -4)}AAAA`;
    const res = await post({ repo: remote, prompt: 'x' }, forged);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/not valid/);
  });

  it('forbids a viewer to submit (403) but lets it read', async () => {
    expect((await post({ repo: remote, prompt: 'x' }, tokens.viewer)).status).toBe(403);
    expect(
      (await fetch(`${server.url}/v1/tasks`, { headers: { authorization: `Bearer ${tokens.viewer}` } }))
        .status,
    ).toBe(200);
  });

  it("hides another tenant's task (404) and keeps lists apart", async () => {
    const created = await post({ repo: remote, prompt: 'Tenant A work' });
    expect(created.status).toBe(201);
    const task = (await created.json()) as { id: string; tenant: string };
    expect(task.tenant).toBe('acme');
    const other = { authorization: `Bearer ${tokens.other}` };
    expect((await fetch(`${server.url}/v1/tasks/${task.id}`, { headers: other })).status).toBe(404);
    expect(
      (await fetch(`${server.url}/v1/tasks/${task.id}/cancel`, { method: 'POST', headers: other })).status,
    ).toBe(404);
    expect((await fetch(`${server.url}/v1/tasks/${task.id}/logs`, { headers: other })).status).toBe(404);
    const list = (await (await fetch(`${server.url}/v1/tasks`, { headers: other })).json()) as {
      items: unknown[];
    };
    expect(list.items).toEqual([]);
  });

  it('returns the same task for a repeated Idempotency-Key and 409 for another body', async () => {
    const body = { repo: remote, prompt: 'Once only' };
    const first = await post(body, tokens.submitter, { 'idempotency-key': 'k-1' });
    const second = await post(body, tokens.submitter, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(((await second.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
    const third = await post({ ...body, prompt: 'Something else' }, tokens.submitter, {
      'idempotency-key': 'k-1',
    });
    expect(third.status).toBe(409);
  });

  it('answers unknown routes and bad query values with 404 and 400', async () => {
    const auth = { authorization: `Bearer ${tokens.submitter}` };
    expect((await fetch(`${server.url}/v1/nothing`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${server.url}/v1/tasks?status=sleeping`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${server.url}/v1/tasks?limit=0`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${server.url}/v1/tasks/tnope`, { headers: auth })).status).toBe(404);
  });

  it('explains a missing provider CLI in the failed task', async () => {
    const created = (await (
      await post({ repo: remote, prompt: 'Needs claude', provider: 'claude', pin: true })
    ).json()) as { id: string };
    const auth = { authorization: `Bearer ${tokens.submitter}` };
    let task: { status: string; error?: { code: string; message: string } } = { status: 'queued' };
    for (let i = 0; i < 100 && task.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      task = (await (
        await fetch(`${server.url}/v1/tasks/${created.id}`, { headers: auth })
      ).json()) as typeof task;
    }
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('not_installed');
    expect(task.error?.message).toMatch(/"\/nonexistent\/claude" was not found.*AUTODEV_CLAUDE_BIN/);
  });
});
