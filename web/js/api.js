// The API as the dashboard calls it: the token (kept in sessionStorage, sent only in the
// Authorization header), ETags for polling, and the task log as a stream.

const TOKEN_KEY = 'autodev.token';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => {
    sessionStorage.removeItem(TOKEN_KEY);
    cache.clear();
  },
};

/** The token was refused (401): the app shows the sign-in page again. */
export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, error) {
    const fields = Array.isArray(error?.details)
      ? error.details.map((d) => `${d.field}: ${d.message}`).join('; ')
      : '';
    super(`${error?.message ?? `HTTP ${status}`}${fields ? ` (${fields})` : ''}`);
    this.status = status;
    this.code = error?.code;
  }
}

let unauthorized = () => {};
/** Called once with what to do when the token is refused. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** The last answer of each GET by URL and its ETag: a 304 returns the very same object. */
const cache = new Map();

function headers(extra = {}) {
  return { authorization: `Bearer ${session.token() ?? ''}`, ...extra };
}

function refused(res, error) {
  session.signOut();
  unauthorized(error?.message ?? 'The token was refused.');
  return new AuthError(error?.message ?? `HTTP ${res.status}`);
}

/** A JSON call; GETs send the last ETag and get the cached answer back when nothing changed. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const cached = method === 'GET' ? cache.get(path) : undefined;
  const res = await fetch(path, {
    method,
    signal,
    cache: 'no-store',
    headers: headers({
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(cached ? { 'if-none-match': cached.etag } : {}),
    }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 304 && cached) return cached.data;
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401) throw refused(res, data?.error);
  if (!res.ok) throw new ApiError(res.status, data?.error);
  const etag = res.headers.get('etag');
  if (method === 'GET' && etag) cache.set(path, { etag, data });
  return data;
}

/** Builds `/path?k=v` from the parameters that have a value. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const text = q.toString();
  return text ? `${path}?${text}` : path;
}

/** Reads `text/event-stream` from a fetch body: calls onEvent(name, data, id) per event. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const ev = { name: 'message', data: '', id: undefined };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const at = line.indexOf(':');
        const field = at < 0 ? line : line.slice(0, at);
        const val = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
        if (field === 'event') ev.name = val;
        else if (field === 'data') ev.data += ev.data ? `\n${val}` : val;
        else if (field === 'id') ev.id = Number(val);
      }
      if (ev.data) onEvent(ev.name, JSON.parse(ev.data), ev.id);
      cut = buffer.indexOf('\n\n');
    }
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Follows a task's log: Server-Sent Events read with fetch (the token stays in a header; an
 * EventSource could only carry it in the URL), resumed from the last line after a cut. Where the
 * server does not stream (a Lambda behind API Gateway), the JSON log is polled instead.
 * `on.line(line)`, `on.status(status)`, `on.end(status)`; stops when `signal` aborts.
 */
export async function followLogs(id, on, signal, from = 0) {
  const path = `/v1/tasks/${encodeURIComponent(id)}/logs`;
  let after = from;
  let ended = false;
  while (!ended && !signal.aborted) {
    try {
      const res = await fetch(withQuery(path, { after }), {
        signal,
        cache: 'no-store',
        headers: headers({ accept: 'text/event-stream' }),
      });
      if (res.status === 401) throw refused(res, (await res.json().catch(() => null))?.error);
      if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => null))?.error);
      if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        await readEvents(res.body, (name, data, seq) => {
          if (name === 'log') {
            after = seq ?? after;
            on.line(data);
          } else if (name === 'status') on.status?.(data.status);
          else if (name === 'end') {
            ended = true;
            on.end?.(data.status);
          }
        });
      } else {
        await res.body?.cancel();
        const page = await api(withQuery(path, { after }), { signal });
        for (const line of page.lines) on.line(line);
        after = page.lastSeq;
        on.status?.(page.status);
        if (page.lines.length === 0 && ['succeeded', 'failed', 'cancelled'].includes(page.status)) {
          ended = true;
          on.end?.(page.status);
        }
      }
    } catch (err) {
      if (err instanceof AuthError || signal.aborted) return;
      on.error?.(err);
    }
    if (!ended) await sleep(1500, signal);
  }
}
