import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import { startPlatform } from '../browser/support.js';
import { makeRemote, tempDir } from '../support/local-platform.js';

let env: Awaited<ReturnType<typeof startPlatform>>;
let url: string;
let remote: string;
let operator: string;

const get = (path: string, token: string, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

/** The events of a whole `text/event-stream` answer. */
function parseEvents(text: string): { event: string; id?: string; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim() && !b.startsWith(':'))
    .map((block) => {
      const f = Object.fromEntries(
        block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      );
      return { event: f.event as string, id: f.id, data: JSON.parse(f.data as string) };
    });
}

beforeAll(async () => {
  const dir = tempDir('autodev-dashboard-api-');
  remote = makeRemote(dir);
  env = await startPlatform(join(dir, 'home'));
  url = env.platform.url;
  operator = await env.token('operator');
}, 30_000);

afterAll(async () => {
  await env?.platform.close(1000);
});

describe('the routes the dashboard reads', () => {
  it('GET /v1/me says who the caller is and what the role allows', async () => {
    const viewer = await (await get('/v1/me', await env.token('viewer'))).json();
    expect(viewer).toEqual({
      tenant: 'acme',
      role: 'viewer',
      subject: 'viewer-user',
      actions: ['task:read', 'schedule:read'],
    });
    const op = (await (await get('/v1/me', operator)).json()) as { actions: string[] };
    expect(op.actions).toEqual(expect.arrayContaining(['task:create', 'task:cancel', 'task:retry']));
    expect((await fetch(`${url}/v1/me`)).status).toBe(401);
  });

  it('answers a read again with 304 and no body while nothing changed', async () => {
    // Arrange
    const first = await get('/v1/tasks?limit=5', operator);
    const etag = first.headers.get('etag') as string;
    expect(first.status).toBe(200);
    expect(etag).toMatch(/^W\/"[\w-]+"$/);
    // Act
    const same = await get('/v1/tasks?limit=5', operator, { 'if-none-match': etag });
    await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: remote, prompt: 'Nothing to do [fake:nochange]' }),
    });
    const changed = await get('/v1/tasks?limit=5', operator, { 'if-none-match': etag });
    // Assert
    expect(same.status).toBe(304);
    expect(await same.text()).toBe('');
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
  });

  it('refuses a stats window out of range, naming the field', async () => {
    const res = await get('/v1/stats?days=365', operator);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { details: { field: string }[] } }).error.details[0]?.field).toBe(
      'days',
    );
  });

  it('streams a task log as Server-Sent Events: every line once, then its end', async () => {
    // Arrange
    const created = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: remote, prompt: 'Write notes [fake:sleep=1500]' }),
    });
    const task = (await created.json()) as Task;
    // Act: the whole stream, from the start
    const res = await get(`/v1/tasks/${task.id}/logs`, operator, { accept: 'text/event-stream' });
    const events = parseEvents(await res.text());
    // Assert
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const logs = events.filter((e) => e.event === 'log');
    const stored = await env.platform.store.readLogs(task.id, 0, 1000);
    expect(logs.map((e) => (e.data as { text: string }).text)).toEqual(stored.lines.map((l) => l.text));
    expect(logs.map((e) => Number(e.id))).toEqual(stored.lines.map((l) => l.seq));
    expect(events.at(-1)).toEqual({ event: 'end', id: undefined, data: { status: 'succeeded' } });
    expect(events.filter((e) => e.event === 'status').map((e) => e.data)).toContainEqual({
      status: 'running',
    });
    // resumed after a line: only the lines after it
    const resumed = await get(`/v1/tasks/${task.id}/logs`, operator, {
      accept: 'text/event-stream',
      'last-event-id': String(stored.lines[2]?.seq),
    });
    const rest = parseEvents(await resumed.text()).filter((e) => e.event === 'log');
    expect(rest.map((e) => Number(e.id))).toEqual(stored.lines.slice(3).map((l) => l.seq));
  });

  it('answers a log stream without a valid token with 401, as JSON, before any event', async () => {
    const res = await fetch(`${url}/v1/tasks/t0000000000000000000x/logs`, {
      headers: { accept: 'text/event-stream', authorization: 'Bearer nope' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/json');
  });
});
