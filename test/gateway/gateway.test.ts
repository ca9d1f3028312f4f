import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ModelCall } from '../../lib/core/metering.js';
import { priceCall, TOKEN_PRICES, tokenPriceFor } from '../../lib/core/metering.js';
import {
  type GatewaySession,
  ModelGateway,
  type RateLimitEvent,
  type SessionOptions,
  type Vendor,
} from '../../lib/gateway/index.js';
import {
  type Protocol,
  type ScriptedUpstream,
  type Step,
  startScriptedUpstream,
} from '../support/upstreams.js';
import { callModel, modelRequest } from './clients.js';

const REAL_KEY = 'sk-real-provider-key-0123456789';
const VENDOR: Record<Protocol, Vendor> = {
  anthropic: 'anthropic',
  'openai-responses': 'openai',
  'openai-chat': 'openai',
  gemini: 'gemini',
};
const PROTOCOLS: Protocol[] = ['anthropic', 'openai-responses', 'openai-chat', 'gemini'];
const TOOL: Step = {
  kind: 'tool_call',
  name: 'edit_file',
  args: { path: 'a.txt', text: 'x' },
  usage: { input: 1000, output: 50 },
};
const ANSWER: Step = { kind: 'answer', text: 'Done.', usage: { input: 2000, output: 300, cacheRead: 5000 } };

let gateway: ModelGateway;
const upstreams: ScriptedUpstream[] = [];

beforeAll(async () => {
  gateway = await ModelGateway.start({ loopThreshold: 4 });
});
afterAll(async () => {
  await gateway.close();
});
afterEach(async () => {
  for (const u of upstreams.splice(0)) await u.close();
});

async function setup(
  protocol: Protocol,
  script: Step[],
  extra: Partial<SessionOptions> = {},
  upstreamOptions: { holdStreams?: boolean } = {},
) {
  const upstream = await startScriptedUpstream({ protocol, script, ...upstreamOptions });
  upstreams.push(upstream);
  const calls: ModelCall[] = [];
  const rateLimits: RateLimitEvent[] = [];
  const ends: string[] = [];
  const session = gateway.openSession({
    attemptId: `a-${protocol}`,
    provider: VENDOR[protocol],
    upstream: upstream.baseUrl,
    realKey: REAL_KEY,
    onCall: (c) => calls.push(c),
    onRateLimit: (e) => rateLimits.push(e),
    onEnd: (status) => ends.push(status),
    ...extra,
  });
  const call = (
    more: { stream?: boolean; history?: { name: string; args: Record<string, unknown> }[] } = {},
  ) => callModel({ protocol, baseUrl: session.baseUrl, key: session.credential, ...more });
  return { upstream, session, calls, rateLimits, ends, call };
}

/** The cost of a scripted answer's usage at the model's list price. */
function costOf(step: Step, model: string): number {
  if (step.kind !== 'answer' && step.kind !== 'tool_call') throw new Error('no usage');
  const u = step.usage;
  return priceCall(
    {
      inputTokens: u.input + (u.cacheRead ?? 0) + (u.cacheWrite ?? 0),
      cachedInputTokens: u.cacheRead ?? 0,
      cacheWriteTokens: u.cacheWrite ?? 0,
      outputTokens: u.output,
    },
    tokenPriceFor(model),
  );
}

const MODEL: Record<Protocol, string> = {
  anthropic: 'claude-sonnet-4-5-20250929',
  'openai-responses': 'gpt-5-codex',
  'openai-chat': 'gpt-4.1-mini',
  gemini: 'gemini-2.5-pro',
};

describe.each(PROTOCOLS)('%s through the gateway', (protocol) => {
  it.each([false, true])(
    'meters an answer exactly (stream: %s) and swaps the credential for the real key',
    async (stream) => {
      // Arrange
      const { upstream, session, calls, call } = await setup(protocol, [ANSWER]);
      // Act
      const res = await call({ stream });
      // Assert
      expect(res.status).toBe(200);
      expect(res.text).toContain('Done.');
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({
        provider: VENDOR[protocol],
        model: MODEL[protocol],
        inputTokens: 7000,
        cachedInputTokens: 5000,
        outputTokens: 300,
        status: 200,
      });
      expect(calls[0]?.costUsd).toBeCloseTo(costOf(ANSWER, MODEL[protocol]), 12);
      expect(calls[0]?.costUsd).toBeGreaterThan(0);
      expect(session.spentUsd).toBeCloseTo(calls[0]?.costUsd ?? -1, 12);
      const seen = upstream.requests[0];
      const headerText = JSON.stringify(seen?.headers);
      expect(headerText).toContain(REAL_KEY);
      expect(headerText).not.toContain(session.credential);
      expect(seen?.url).not.toContain(session.credential);
      expect(res.text).not.toContain(REAL_KEY);
    },
  );

  it('answers 401 in the vendor format to an unknown credential and to a closed session', async () => {
    // Arrange
    const { upstream, session, call } = await setup(protocol, [ANSWER]);
    // Act
    const unknown = await callModel({ protocol, baseUrl: session.baseUrl, key: 'autodev-not-a-session' });
    expect((await call()).status).toBe(200);
    session.close();
    const closed = await call();
    // Assert
    for (const res of [unknown, closed]) {
      expect(res.status).toBe(401);
      const body = JSON.parse(res.text);
      if (protocol === 'anthropic')
        expect(body).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
      else if (protocol === 'gemini')
        expect(body).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED' } });
      else expect(body).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error' } });
    }
    expect(upstream.requests).toHaveLength(1);
  });

  it('passes the first event of a stream on before the upstream has sent the last', async () => {
    // Arrange
    const { upstream, session } = await setup(protocol, [ANSWER], {}, { holdStreams: true });
    const { url, init } = modelRequest({
      protocol,
      baseUrl: session.baseUrl,
      key: session.credential,
      stream: true,
    });
    // Act
    const res = await fetch(url, init);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await upstream.held();
    const first = await reader.read();
    // Assert: the upstream is still holding the rest of its stream
    expect(upstream.streamsEnded).toBe(0);
    expect(new TextDecoder().decode(first.value)).toMatch(/^(event: \S+\n)?data: /);
    upstream.release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value);
    expect(rest).toContain('Done.');
    expect(upstream.streamsEnded).toBe(1);
  });

  it('refuses the call after the budget is spent, in the vendor format, having forwarded one', async () => {
    // Arrange: the first call costs more than the limit
    const first = costOf(TOOL, MODEL[protocol]);
    const { upstream, session, calls, ends, call } = await setup(protocol, [TOOL, ANSWER], {
      limits: { maxCostUsd: first / 2 },
    });
    // Act
    const one = await call();
    const two = await call({ history: [{ name: 'edit_file', args: { path: 'a.txt', text: 'x' } }] });
    // Assert
    expect(one.status).toBe(200);
    expect(two.status).toBe(400);
    expect(two.headers.get('x-should-retry')).toBe('false');
    expect(two.text).toContain('budget exceeded');
    const body = JSON.parse(two.text);
    if (protocol === 'anthropic') expect(body.error.type).toBe('invalid_request_error');
    else if (protocol === 'gemini') expect(body.error.status).toBe('FAILED_PRECONDITION');
    else expect(body.error.code).toBe('budget_exceeded');
    expect(upstream.requests).toHaveLength(1);
    expect(calls).toHaveLength(1);
    expect(session.status).toBe('budget_exceeded');
    expect(ends).toEqual(['budget_exceeded']);
  });

  it('ends the session when the same tool call repeats N times in a row', async () => {
    // Arrange: the gateway's threshold is 4
    const { upstream, session, ends, call } = await setup(protocol, [TOOL]);
    const same = { name: 'run', args: { cmd: 'npm test' } };
    const statuses: number[] = [];
    // Act: a first call, then the same tool call 4 times; a resend of one request is not a repeat
    statuses.push((await call()).status);
    statuses.push((await call({ history: [same] })).status);
    statuses.push((await call({ history: [same] })).status); // resend: same history
    for (let n = 2; n <= 4; n++) statuses.push((await call({ history: Array(n).fill(same) })).status);
    const after = await call({ history: [{ name: 'other', args: {} }] });
    // Assert
    expect(statuses).toEqual([200, 200, 200, 200, 200, 400]);
    expect(after.status).toBe(400);
    expect(after.text).toContain('same tool call');
    expect(session.status).toBe('loop_detected');
    expect(ends).toEqual(['loop_detected']);
    expect(upstream.requests).toHaveLength(5);
  });
});

describe('rate limits', () => {
  it('reports a 429 at once with its retry-after, and ends the session when the reset is far off', async () => {
    // Arrange
    const { session, rateLimits, ends, call, calls } = await setup('anthropic', [
      { kind: 'error', status: 429, headers: { 'retry-after': '600' } },
    ]);
    const before = Date.now();
    // Act
    const res = await call();
    const next = await call();
    // Assert
    expect(res.status).toBe(429);
    expect(rateLimits).toHaveLength(1);
    expect(rateLimits[0]).toMatchObject({ provider: 'anthropic', status: 429 });
    expect(rateLimits[0]?.resetAt).toBeGreaterThanOrEqual(before + 600_000);
    expect(rateLimits[0]?.resetAt).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(session.status).toBe('rate_limited');
    expect(ends).toEqual(['rate_limited']);
    expect(next.status).toBe(403);
    expect(JSON.parse(next.text)).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    expect(calls.map((c) => [c.status, c.costUsd])).toEqual([[429, 0]]);
  });

  it('reports a near reset from anthropic-ratelimit headers and keeps the session open', async () => {
    // Arrange
    const resetAt = new Date(Date.now() + 5_000);
    resetAt.setMilliseconds(0);
    const { session, rateLimits, call } = await setup('anthropic', [
      {
        kind: 'error',
        status: 429,
        headers: {
          'anthropic-ratelimit-requests-remaining': '0',
          'anthropic-ratelimit-requests-reset': resetAt.toISOString(),
          'anthropic-ratelimit-tokens-remaining': '5000',
          'anthropic-ratelimit-tokens-reset': new Date(Date.now() + 3_600_000).toISOString(),
        },
      },
      ANSWER,
    ]);
    // Act
    const first = await call();
    const second = await call();
    // Assert
    expect(first.status).toBe(429);
    expect(rateLimits[0]?.resetAt).toBe(resetAt.getTime());
    expect(session.status).toBe('open');
    expect(second.status).toBe(200);
  });

  it.each([
    [
      'openai-responses',
      429,
      { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6m0s' },
      360_000,
    ],
    ['anthropic', 529, {}, undefined],
    ['gemini', 503, { 'retry-after': '2' }, 2_000],
  ] as const)('reports %s %d with its reset', async (protocol, status, headers, inMs) => {
    // Arrange
    const { rateLimits, call, session } = await setup(protocol, [{ kind: 'error', status, headers }]);
    const before = Date.now();
    // Act
    const res = await call();
    // Assert
    expect(res.status).toBe(status);
    expect(rateLimits).toHaveLength(1);
    expect(rateLimits[0]?.status).toBe(status);
    if (inMs === undefined) expect(rateLimits[0]?.resetAt).toBeUndefined();
    else {
      expect(rateLimits[0]?.resetAt).toBeGreaterThanOrEqual(before + inMs);
      expect(rateLimits[0]?.resetAt).toBeLessThanOrEqual(Date.now() + inMs);
    }
    expect(session.status).toBe(inMs !== undefined && inMs > 60_000 ? 'rate_limited' : 'open');
  });
});

describe('the gateway', () => {
  it('checks a tenant budget hook before forwarding', async () => {
    // Arrange
    let tenantSpent = 0;
    const { upstream, session, call } = await setup('openai-chat', [ANSWER], {
      onCall: (c) => {
        tenantSpent += c.costUsd;
      },
      tenantBudget: () => ({
        exceeded: tenantSpent > 0,
        message: 'budget exceeded: tenant acme spent its $5 for today',
      }),
    });
    // Act
    const one = await call();
    const two = await call();
    // Assert
    expect(one.status).toBe(200);
    expect(two.status).toBe(400);
    expect(JSON.parse(two.text).error.message).toBe('budget exceeded: tenant acme spent its $5 for today');
    expect(session.status).toBe('budget_exceeded');
    expect(upstream.requests).toHaveLength(1);
  });

  it('asks a Chat Completions stream for its usage so that it is metered', async () => {
    // Arrange
    const { upstream, calls, call } = await setup('openai-chat', [ANSWER]);
    // Act
    const res = await call({ stream: true });
    // Assert
    expect(res.status).toBe(200);
    const sent = upstream.requests[0]?.body as { stream_options?: unknown } | undefined;
    expect(sent?.stream_options).toEqual({ include_usage: true });
    expect(calls[0]).toMatchObject({ inputTokens: 7000, outputTokens: 300 });
  });

  it('moves a Gemini key from the query to a header, with the real key', async () => {
    // Arrange
    const { upstream, session, calls } = await setup('gemini', [ANSWER]);
    // Act
    const res = await callModel({
      protocol: 'gemini',
      baseUrl: session.baseUrl,
      key: session.credential,
      geminiKeyIn: 'query',
      stream: true,
    });
    // Assert
    expect(res.status).toBe(200);
    const seen = upstream.requests[0];
    expect(seen?.url).toBe('/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse');
    expect(seen?.headers['x-goog-api-key']).toBe(REAL_KEY);
    expect(calls).toHaveLength(1);
  });

  it('meters what a stream carried when the client goes away in the middle of it', async () => {
    // Arrange: the upstream sends message_start (input usage) and holds the rest
    const { upstream, session, calls } = await setup('anthropic', [ANSWER], {}, { holdStreams: true });
    const abort = new AbortController();
    const { url, init } = modelRequest({
      protocol: 'anthropic',
      baseUrl: session.baseUrl,
      key: session.credential,
      stream: true,
      signal: abort.signal,
    });
    const res = await fetch(url, init);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await upstream.held();
    await reader.read();
    // Act
    abort.abort();
    // Assert
    const deadline = Date.now() + 5_000;
    while (calls.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      status: 200,
      inputTokens: 7000,
      cachedInputTokens: 5000,
      outputTokens: 1,
    });
    expect(upstream.streamsEnded).toBe(0);
  });

  it('forwards only metered routes and free ones: a batch is refused, a model list goes through', async () => {
    // Arrange
    const { upstream, session } = await setup('anthropic', [ANSWER]);
    const headers = { 'x-api-key': session.credential, 'content-type': 'application/json' };
    // Act
    const batch = await fetch(`${session.baseUrl}/v1/messages/batches`, {
      method: 'POST',
      headers,
      body: '{}',
    });
    const models = await fetch(`${session.baseUrl}/v1/models`, { headers });
    // Assert
    expect(batch.status).toBe(404);
    expect(await batch.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(upstream.requests.map((r) => [r.method, r.url, r.headers['x-api-key']])).toEqual([
      ['GET', '/v1/models', REAL_KEY],
    ]);
    expect(models.status).toBe(404); // the scripted upstream has no model list: its own answer came back
  });

  it('answers a WebSocket upgrade (Codex tries one first) with 404 so the CLI falls back to HTTPS', async () => {
    // Arrange
    const { upstream, session } = await setup('openai-responses', [ANSWER]);
    // Act
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${session.baseUrl}/responses`, {
        headers: {
          authorization: `Bearer ${session.credential}`,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('upgrade', () => resolve(101));
      req.on('error', reject);
      req.end();
    });
    // Assert
    expect(status).toBe(404);
    expect(upstream.requests).toHaveLength(0);
  });

  it("prices a session's calls at its own price when it has one (a provider entry's price)", async () => {
    // Arrange
    const { calls, call } = await setup('anthropic', [ANSWER], { price: { input: 0, output: 0 } });
    // Act
    await call();
    // Assert
    expect(calls[0]).toMatchObject({ inputTokens: 7000, outputTokens: 300, costUsd: 0 });
  });

  it.each(PROTOCOLS)(
    'passes an upstream 401 (a bad real key) through on %s, records it at no cost, and ends the session',
    async (protocol) => {
      // Arrange
      const { calls, call, session, ends, upstream } = await setup(protocol, [
        { kind: 'error', status: 401, message: 'invalid x-api-key' },
      ]);
      // Act
      const res = await call();
      const retried = await call();
      // Assert: the CLI sees the provider's answer, then nothing more reaches the provider
      expect(res.status).toBe(401);
      expect(res.text).toContain('invalid x-api-key');
      expect(calls.map((c) => [c.status, c.costUsd])).toEqual([[401, 0]]);
      expect(session.status).toBe('key_rejected');
      expect(ends).toEqual(['key_rejected']);
      expect(session.endMessage).toContain('HTTP 401');
      expect(retried.headers.get('x-should-retry')).toBe('false');
      expect(upstream.requests).toHaveLength(1);
    },
  );

  it("counts what the task spent before the session (the agent's, for its reviewer) against the budget", async () => {
    // Arrange: the task spent its limit before this session opened
    const { upstream, session, ends, call } = await setup('anthropic', [ANSWER], {
      limits: { maxCostUsd: 0.05 },
      spentBeforeUsd: 0.05,
    });
    // Act
    const res = await call();
    // Assert
    expect(res.status).toBe(400);
    expect(res.text).toContain('budget exceeded');
    expect(upstream.requests).toHaveLength(0);
    expect(session.status).toBe('budget_exceeded');
    expect(ends).toEqual(['budget_exceeded']);
  });

  it('counts spend added from outside the session (a review session) against the budget', async () => {
    // Arrange
    const { upstream, session, call } = await setup('anthropic', [ANSWER], { limits: { maxCostUsd: 0.05 } });
    expect((await call()).status).toBe(200);
    // Act
    session.addSpend(0.05);
    const res = await call();
    // Assert
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(1);
    expect(session.status).toBe('budget_exceeded');
  });

  it('gives up on a silent upstream with a 502 in the vendor format', async () => {
    // Arrange
    const quick = await ModelGateway.start({ upstreamIdleMs: 300 });
    const upstream = await startScriptedUpstream({
      protocol: 'openai-responses',
      script: [{ kind: 'hang' }],
    });
    upstreams.push(upstream);
    const calls: ModelCall[] = [];
    const session: GatewaySession = quick.openSession({
      attemptId: 'hang',
      provider: 'openai',
      upstream: upstream.baseUrl,
      realKey: REAL_KEY,
      onCall: (c) => calls.push(c),
    });
    try {
      // Act
      const res = await callModel({
        protocol: 'openai-responses',
        baseUrl: session.baseUrl,
        key: session.credential,
      });
      // Assert
      expect(res.status).toBe(502);
      expect(res.headers.get('x-should-retry')).toBeNull(); // worth another try, unlike a refusal
      expect(JSON.parse(res.text)).toMatchObject({
        error: { type: 'server_error', code: 'upstream_unreachable' },
      });
      expect(calls.map((c) => c.status)).toEqual([0]);
    } finally {
      await quick.close();
    }
  });

  it('prices from a table given by the caller (a model the default table lacks)', async () => {
    // Arrange
    const priced = await ModelGateway.start({
      prices: { ...TOKEN_PRICES, 'gpt-6.1-sol': { input: 10, output: 100 } },
    });
    const upstream = await startScriptedUpstream({
      protocol: 'openai-responses',
      script: [ANSWER],
      model: 'gpt-6.1-sol',
    });
    upstreams.push(upstream);
    const calls: ModelCall[] = [];
    const session = priced.openSession({
      attemptId: 'p',
      provider: 'openai',
      upstream: upstream.baseUrl,
      realKey: REAL_KEY,
      onCall: (c) => calls.push(c),
    });
    try {
      // Act
      await callModel({ protocol: 'openai-responses', baseUrl: session.baseUrl, key: session.credential });
      // Assert: 7000 input (5000 cached, at the input price as the entry has no cache price), 300 output
      expect(calls[0]?.costUsd).toBeCloseTo((7000 * 10 + 300 * 100) / 1e6, 12);
    } finally {
      await priced.close();
    }
  });
});
