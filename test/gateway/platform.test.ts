import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { priceCall, tokenPriceFor } from '../../lib/core/metering.js';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';
import { type ScriptedUpstream, type Step, startScriptedUpstream } from '../support/upstreams.js';
import { MINI_CLAUDE } from './mini-claude.js';

const REAL_KEY = 'sk-ant-real-provider-key-7f3a9c';
const MODEL = 'claude-sonnet-4-5-20250929';
/** The price providers.yaml gives the model, over the built-in table's (3 / 15 / 0.3). */
const PRICE = { input: 2, output: 11, cacheRead: 0.25 };
const EDIT: Step = {
  kind: 'tool_call',
  name: 'write_file',
  args: { path: 'NOTES.md', text: 'written through the gateway\n' },
  usage: { input: 1000, output: 50 },
};
const ANSWER: Step = {
  kind: 'answer',
  text: 'Wrote NOTES.md.',
  usage: { input: 2000, output: 300, cacheRead: 5000 },
};

function cost(step: Step): number {
  if (step.kind !== 'tool_call' && step.kind !== 'answer') return 0;
  const u = step.usage;
  return priceCall(
    {
      inputTokens: u.input + (u.cacheRead ?? 0),
      cachedInputTokens: u.cacheRead ?? 0,
      cacheWriteTokens: 0,
      outputTokens: u.output,
    },
    PRICE,
  );
}

/** The review agent's answer: an approval, in the form review prompts ask for. */
const REVIEW: Step = {
  kind: 'answer',
  text: `Looks right.\n\n\`\`\`json\n${JSON.stringify({ verdict: 'approve', summary: 'NOTES.md is written as asked.', comments: [] })}\n\`\`\``,
  usage: { input: 3000, output: 200 },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the model gateway in the local platform (Claude Code pointed at it)', () => {
  let dir: string;
  let remote: string;
  /** A repository whose .autodev.yml asks the `reviewer` provider (Claude Code again) for a review. */
  let reviewedRemote: string;
  let server: RunningServer;
  let token: string;
  let globexToken: string;
  let upstream: ScriptedUpstream;
  let upstreamUrl: string;

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir);
    mkdirSync(join(dir, 'reviewed'));
    reviewedRemote = makeRemote(join(dir, 'reviewed'), {
      'README.md': '# reviewed\n',
      '.autodev.yml': 'review:\n  provider: reviewer\n',
    });
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const bin = join(dir, 'mini-claude');
    writeFileSync(
      join(home, 'providers.yaml'),
      `prices:\n  claude-sonnet-4-5:\n    input: ${PRICE.input}\n    output: ${PRICE.output}\n    cacheRead: ${PRICE.cacheRead}\n` +
        // the review agent: Claude Code under another name, its key from the server's environment
        `providers:\n  reviewer:\n    driver: claude\n    bin: ${bin}\n`,
    );
    writeFileSync(bin, MINI_CLAUDE);
    chmodSync(bin, 0o755);
    chmodSync(dir, 0o755); // the agent's sandbox user runs the CLI from here
    // one long-lived upstream that answers from the current script
    upstream = await startScriptedUpstream({ protocol: 'anthropic', script: [{ kind: 'hang' }] });
    upstreamUrl = upstream.baseUrl;
    server = await startServer(
      platformEnv(home, {
        ANTHROPIC_API_KEY: REAL_KEY,
        ANTHROPIC_BASE_URL: upstreamUrl,
        AUTODEV_CLAUDE_BIN: bin,
        AUTODEV_CONCURRENCY: '1',
        AUTODEV_PROVIDER_RATE: '1000',
        // the agent's HOME stays, for the environment it dumped there
        AUTODEV_KEEP_WORKSPACES: '1',
        // globex may spend less on models per day than one call of the script costs
        AUTODEV_QUOTAS: JSON.stringify({ globex: { usdPerDay: cost(EDIT) / 2 } }),
      }),
    );
    token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
    globexToken = (
      await cli(['token', '--tenant', 'globex', '--role', 'operator'], server.env)
    ).stdout.trim();
  });

  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
  });

  /** The platform's upstream is fixed at start: each test gives it a new script. */
  function useScript(steps: Step[]): ScriptedUpstream {
    upstream.setScript(steps);
    return upstream;
  }

  function post(
    prompt: string,
    limits: Record<string, number> = {},
    as = token,
    repo = remote,
  ): Promise<Response> {
    return fetch(`${server.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
      // pinned: these tests watch Claude Code against the scripted upstream, never another provider
      body: JSON.stringify({ repo, prompt, provider: 'claude', pin: true, limits }),
    });
  }

  async function submit(
    prompt: string,
    limits: Record<string, number> = {},
    as = token,
    repo = remote,
  ): Promise<Task> {
    const res = await post(prompt, limits, as, repo);
    expect(res.status).toBe(201);
    return (await res.json()) as Task;
  }

  async function get(id: string, as = token): Promise<Task> {
    const res = await fetch(`${server.url}/v1/tasks/${id}`, {
      headers: { authorization: `Bearer ${as}` },
    });
    return (await res.json()) as Task;
  }

  const settled = (id: string, statuses: string[], ms = 30_000, as = token) =>
    until(
      async () => {
        const t = await get(id, as);
        return statuses.includes(t.status) ? t : undefined;
      },
      ms,
      `task ${id} in ${statuses.join('|')}`,
    );

  it('meters every call: the task usage is the sum of its ledger, and the key stays out of the agent', async () => {
    // Arrange
    const up = useScript([EDIT, ANSWER]);
    // Act: the agent dumps its environment into its HOME (it may write nowhere else but its worktree)
    const task = await settled((await submit('Write the notes [envdump=~/agent-environ]')).id, [
      'succeeded',
      'failed',
    ]);
    // Assert
    expect(task.status).toBe('succeeded');
    const calls = task.attempts[0]?.calls ?? [];
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => [c.model, c.inputTokens, c.cachedInputTokens, c.outputTokens, c.status])).toEqual(
      [
        [MODEL, 1000, 0, 50, 200],
        [MODEL, 7000, 5000, 300, 200],
      ],
    );
    expect(task.usage.inputTokens).toBe(8000);
    expect(task.usage.outputTokens).toBe(350);
    expect(task.usage.costUsd).toBeCloseTo(cost(EDIT) + cost(ANSWER), 6);
    expect(task.usage.costUsd).toBeGreaterThan(0);
    // at the price providers.yaml gives the model, not the built-in table's
    expect(tokenPriceFor(MODEL)).not.toEqual(PRICE);
    expect(calls[0]?.costUsd).toBeCloseTo((1000 * PRICE.input + 50 * PRICE.output) / 1e6, 9);
    // the agent saw only its session credential and the gateway's loopback address
    const attemptDir = readdirSync(join(dir, 'home', 'workspaces')).find((n) => n.startsWith(task.id));
    const envFile = join(dir, 'home', 'workspaces', attemptDir as string, 'home', 'agent-environ');
    const environ = readFileSync(envFile, 'utf8').split('\0');
    expect(environ.join('\n')).not.toContain(REAL_KEY);
    const baseUrl = environ.find((e) => e.startsWith('ANTHROPIC_BASE_URL='))?.split('=')[1];
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(baseUrl).not.toBe(upstreamUrl);
    const credential = environ.find((e) => e.startsWith('ANTHROPIC_API_KEY='))?.split('=')[1];
    expect(credential).toMatch(/^autodev-/);
    // the upstream got the real key, never the credential
    expect(up.requests.map((r) => r.headers['x-api-key'])).toEqual([REAL_KEY, REAL_KEY]);
    const logs = await (
      await fetch(`${server.url}/v1/tasks/${task.id}/logs`, { headers: { authorization: `Bearer ${token}` } })
    ).text();
    expect(logs).toContain('model call');
    const status = await cli(['status', task.id], { ...server.env, AUTODEV_TOKEN: token });
    expect(status.stdout).toContain(`${MODEL}  200  7000 in (5000 cached) / 300 out`);
    expect(logs).not.toContain(REAL_KEY);
    expect(server.output()).not.toContain(REAL_KEY);
  });

  it('routes the review agent through a gateway session of its own: its calls are in the ledger, its environment holds no key', async () => {
    // Arrange: the agent's two turns, then the reviewer's answer
    const up = useScript([EDIT, ANSWER, REVIEW]);
    // Act: both agents dump their environments into the attempt's HOME
    const task = await settled(
      (await submit('Write the notes [envdump=~/agent-environ]', {}, token, reviewedRemote)).id,
      ['succeeded', 'failed'],
    );
    // Assert: the review happened, and its call is the ledger's third
    expect(task.status).toBe('succeeded');
    expect(task.review).toMatchObject({ provider: 'reviewer', verdict: 'approve' });
    const calls = task.attempts[0]?.calls ?? [];
    expect(calls.map((c) => [c.inputTokens, c.outputTokens, c.status])).toEqual([
      [1000, 50, 200],
      [7000, 300, 200],
      [3000, 200, 200],
    ]);
    expect(task.usage.inputTokens).toBe(11_000);
    expect(task.usage.outputTokens).toBe(550);
    expect(task.usage.costUsd).toBeCloseTo(cost(EDIT) + cost(ANSWER) + cost(REVIEW), 6);
    // every call reached the provider with the real key, the reviewer's through the gateway too
    expect(up.requests.map((r) => r.headers['x-api-key'])).toEqual([REAL_KEY, REAL_KEY, REAL_KEY]);
    // the reviewer's environment: its own session credential and the gateway's address, never the key
    const attemptDir = readdirSync(join(dir, 'home', 'workspaces')).find((n) => n.startsWith(task.id));
    const home = join(dir, 'home', 'workspaces', attemptDir as string, 'home');
    const agentEnv = readFileSync(join(home, 'agent-environ'), 'utf8').split('\0');
    const reviewerEnv = readFileSync(join(home, 'agent-environ.review'), 'utf8').split('\0');
    expect(reviewerEnv.join('\n')).not.toContain(REAL_KEY);
    const envValue = (env: string[], name: string) =>
      env.find((e) => e.startsWith(`${name}=`))?.split('=')[1];
    expect(envValue(reviewerEnv, 'ANTHROPIC_API_KEY')).toMatch(/^autodev-/);
    expect(envValue(reviewerEnv, 'ANTHROPIC_API_KEY')).not.toBe(envValue(agentEnv, 'ANTHROPIC_API_KEY'));
    expect(envValue(reviewerEnv, 'ANTHROPIC_BASE_URL')).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(envValue(reviewerEnv, 'ANTHROPIC_BASE_URL')).not.toBe(upstreamUrl);
  });

  it("checks the review agent's calls against the task's budget: an agent that spent it gets no review call", async () => {
    // Arrange: the limit lies between the agent's first call and its two
    const up = useScript([EDIT, ANSWER, REVIEW]);
    const limit = cost(EDIT) + cost(ANSWER) / 2;
    // Act
    const task = await settled(
      (await submit('Write the notes', { maxCostUsd: limit }, token, reviewedRemote)).id,
      ['succeeded', 'failed'],
    );
    // Assert: the agent's second call went through (it started under the limit), the reviewer's was refused
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('budget_exceeded');
    expect(up.requests).toHaveLength(2);
    expect(task.usage.costUsd).toBeCloseTo(cost(EDIT) + cost(ANSWER), 6);
    const logs = await (
      await fetch(`${server.url}/v1/tasks/${task.id}/logs`, { headers: { authorization: `Bearer ${token}` } })
    ).text();
    expect(logs).toContain(
      "review by reviewer failed: the review agent's model gateway session ended: AutoDev budget exceeded",
    );
  });

  it("ends the attempt at once when the provider rejects the key (401): auth, counted in the provider's health", async () => {
    // Arrange: the CLI retries a 401 as Claude Code does
    const up = useScript([{ kind: 'error', status: 401, message: 'invalid x-api-key' }]);
    const health = async () => {
      const res = await fetch(`${server.url}/v1/providers`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as {
        items: { name: string; recentAttempts: number; successRate?: number }[];
      };
      return body.items.find((p) => p.name === 'claude');
    };
    const before = await health();
    const started = Date.now();
    // Act
    const task = await settled(
      (await submit('Write the notes')).id,
      ['succeeded', 'failed', 'retrying'],
      15_000,
    );
    // Assert
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('auth');
    expect(task.error?.message).toContain('rejected the API key');
    expect(task.attempts).toHaveLength(1);
    expect(task.attempts[0]?.errorClass).toBe('auth');
    // the CLI's retries were refused at the gateway: the provider saw one request
    expect(up.requests).toHaveLength(1);
    const after = await health();
    expect(after?.recentAttempts).toBe((before?.recentAttempts ?? 0) + 1);
    const successes = (h?: { recentAttempts: number; successRate?: number }) =>
      Math.round((h?.successRate ?? 0) * (h?.recentAttempts ?? 0));
    expect(successes(after)).toBe(successes(before));
  });

  it('ends a task over its budget as budget_exceeded after one call', async () => {
    // Arrange: the first call alone costs more than the limit
    const up = useScript([EDIT, ANSWER]);
    // Act
    const task = await settled((await submit('Write the notes', { maxCostUsd: cost(EDIT) / 2 })).id, [
      'succeeded',
      'failed',
    ]);
    // Assert
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('budget_exceeded');
    expect(up.requests).toHaveLength(1);
    expect(task.attempts).toHaveLength(1);
    expect(task.usage.costUsd).toBeCloseTo(cost(EDIT), 6);
  });

  it('holds a tenant to its daily budget: the call past it is refused, the task fails budget_exceeded, and new tasks get 429 until midnight UTC', async () => {
    // Arrange: globex's daily budget (usdPerDay) is half of the first call's cost
    const up = useScript([EDIT, ANSWER]);
    // Act
    const task = await settled(
      (await submit('Write the notes', {}, globexToken)).id,
      ['succeeded', 'failed'],
      30_000,
      globexToken,
    );
    const refused = await post('Write more notes', {}, globexToken);
    // Assert: one call went through and was counted; the next was refused in Anthropic's format
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('budget_exceeded');
    expect(task.error?.message).toContain('usdPerDay');
    expect(up.requests).toHaveLength(1);
    expect(task.usage.costUsd).toBeCloseTo(cost(EDIT), 6);
    expect(refused.status).toBe(429);
    const midnight = Date.UTC(
      new Date().getUTCFullYear(),
      new Date().getUTCMonth(),
      new Date().getUTCDate() + 1,
    );
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(Math.abs(Date.now() + retryAfter * 1000 - midnight)).toBeLessThan(5_000);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      `Tenant globex has spent $${cost(EDIT).toFixed(4)} on models today (UTC), its daily budget of $${cost(EDIT) / 2} (usdPerDay); it opens again at 00:00 UTC.`,
    );
  });

  it('ends a looping agent as loop_detected', async () => {
    // Arrange: the model asks for the same tool call forever
    const up = useScript([EDIT]);
    // Act
    const task = await settled((await submit('Write the notes')).id, ['succeeded', 'failed']);
    // Assert: the default threshold is 8 repeats; the 8th is refused
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('loop_detected');
    expect(up.requests).toHaveLength(8);
  });

  // it opens claude's breaker for a moment
  it("reports each upstream 429 to the provider's breaker at once, while the attempt goes on", async () => {
    // Arrange: five 429s with a near reset (the CLI retries them), then an answer
    const limited: Step = { kind: 'error', status: 429, headers: { 'retry-after': '1' } };
    useScript([limited, limited, limited, limited, limited, ANSWER]);
    const recent = async () => {
      const res = await fetch(`${server.url}/v1/providers`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as {
        items: { name: string; recentAttempts: number; breaker: string }[];
      };
      return body.items.find((p) => p.name === 'claude');
    };
    const before = (await recent())?.recentAttempts ?? 0;
    // Act
    const task = await settled((await submit('Write the notes')).id, ['succeeded', 'failed', 'retrying']);
    // Assert: five failures reached the breaker as they happened, and the attempt's success after them
    expect(task.status).toBe('succeeded');
    const after = await recent();
    expect((after?.recentAttempts ?? 0) - before).toBe(6);
  });

  // last: claude's token bucket stays empty until the 10-minute reset
  it('parks a task whose provider is rate-limited for 10 minutes within seconds, and admits no other attempt on it until the reset', async () => {
    // Arrange
    const up = useScript([{ kind: 'error', status: 429, headers: { 'retry-after': '600' } }]);
    await sleep(1100); // the last test's one-second limits have reset
    const before = Date.now();
    // Act
    const task = await settled((await submit('Write the notes')).id, ['retrying', 'failed'], 15_000);
    // Assert
    expect(Date.now() - before).toBeLessThan(10_000);
    expect(task.status).toBe('retrying');
    expect(task.attempts[0]?.errorClass).toBe('rate_limit');
    expect(task.notBefore ?? 0).toBeGreaterThanOrEqual(before + 590_000);
    expect(up.requests).toHaveLength(1);
    // the next task on claude waits for the reset without spending an attempt on the closed window
    const next = await settled((await submit('Write more notes')).id, ['retrying', 'failed', 'succeeded']);
    expect(next.attempts).toHaveLength(0);
    expect(next.notBefore ?? 0).toBeGreaterThanOrEqual(before + 590_000);
    expect(up.requests).toHaveLength(1);
    for (const id of [task.id, next.id])
      await fetch(`${server.url}/v1/tasks/${id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
  });
});

describe('the price table in providers.yaml', () => {
  it('refuses a price that is not a number at start, naming the field', async () => {
    // Arrange
    const home = join(tempDir(), 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'providers.yaml'), 'prices:\n  gpt-5:\n    input: cheap\n    output: 10\n');
    // Act
    const r = await cli(['serve'], platformEnv(home));
    // Assert
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/providers\.yaml: prices\.gpt-5\.input: .*number/);
  });

  it('refuses an unknown price field, naming it', async () => {
    const home = join(tempDir(), 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(
      join(home, 'providers.yaml'),
      'prices:\n  gpt-5:\n    input: 1\n    output: 10\n    cached: 1\n',
    );
    const r = await cli(['serve'], platformEnv(home));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/providers\.yaml: prices\.gpt-5: .*cached/);
  });
});
