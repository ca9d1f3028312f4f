/**
 * The real provider CLIs (installed by `npm run real-clis:install`) run through the local platform:
 * the real server and executor, the bubblewrap sandbox, the model gateway, and a scripted upstream
 * speaking each CLI's wire protocol on 127.0.0.1. Every agent gets HTTP(S)_PROXY pointing at a
 * recording proxy (the loopback excepted): nothing may reach it.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { priceCall, tokenPriceFor } from '../../lib/core/metering.js';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  ROOT,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';
import {
  filesContaining,
  type RecordingProxy,
  realCli,
  startRecordingProxy,
  watchProcesses,
} from '../support/real-clis.js';
import {
  type Protocol,
  type RecordedRequest,
  type ScriptedUpstream,
  type Step,
  startScriptedUpstream,
} from '../support/upstreams.js';

const CONTENT = 'written through the gateway\n';

interface CliCase {
  name: 'claude' | 'codex' | 'gemini' | 'opencode';
  protocol: Protocol;
  /** The real key, in the server's environment only. */
  key: Record<string, string>;
  /** Where the server's environment points the vendor (the gateway's upstream). */
  baseUrlVar: string;
  /** The model the run asks for (AUTODEV_<NAME>_MODEL), when the CLI's default does not suit. */
  model?: string;
  /** The CLI's own edit tool, in its wire format, writing CONTENT to NOTES.md. */
  edit: Extract<Step, { kind: 'tool_call' }>;
  /** The session credential as the agent's environment holds it. */
  credentialVar: string;
  /** Answer tool-less side calls (opencode's title, Gemini's router) apart from the script. */
  sideCalls?: boolean;
  /**
   * The CLI's own loop detection, when it stops a loop before the gateway's guard (default 8): the
   * model turns it takes. Gemini CLI 0.61 (its threshold: 5 identical tool calls) stopped after 6
   * turns asking for the same call, exits 0 and says so in a warning, which its driver reads as
   * loop_detected. The others run with a guard of 4.
   */
  ownLoopStop?: number;
}

const LOOP_THRESHOLD = 4;
const EDIT_USAGE = { input: 1200, output: 60 };
const CASES: CliCase[] = [
  {
    name: 'claude',
    protocol: 'anthropic',
    key: { ANTHROPIC_API_KEY: 'sk-ant-real-key-3c1f0a9e77' },
    baseUrlVar: 'ANTHROPIC_BASE_URL',
    model: 'claude-sonnet-4-5-20250929',
    edit: {
      kind: 'tool_call',
      name: 'Write',
      args: { file_path: 'NOTES.md', content: CONTENT },
      usage: EDIT_USAGE,
    },
    credentialVar: 'ANTHROPIC_API_KEY',
  },
  {
    name: 'codex',
    protocol: 'openai-responses',
    key: { OPENAI_API_KEY: 'sk-proj-real-key-51d2e8b4aa' },
    baseUrlVar: 'OPENAI_BASE_URL',
    // Codex 0.169's default model gets a JavaScript tool; this one gets exec_command (and a price)
    model: 'gpt-5-codex',
    edit: {
      kind: 'tool_call',
      name: 'exec_command',
      args: { cmd: `printf '${CONTENT.trim()}\\n' > NOTES.md` },
      usage: EDIT_USAGE,
    },
    credentialVar: 'CODEX_API_KEY',
  },
  {
    name: 'gemini',
    protocol: 'gemini',
    key: { GEMINI_API_KEY: 'AIza-real-key-0b9c7d6e5f' },
    baseUrlVar: 'GOOGLE_GEMINI_BASE_URL',
    // a named model skips Gemini CLI's router (a classifier call before each turn)
    model: 'gemini-2.5-pro',
    edit: {
      kind: 'tool_call',
      name: 'write_file',
      args: { file_path: 'NOTES.md', content: CONTENT },
      usage: EDIT_USAGE,
    },
    credentialVar: 'GEMINI_API_KEY',
    sideCalls: true,
    ownLoopStop: 6,
  },
  {
    name: 'opencode',
    protocol: 'openai-chat',
    key: { OPENAI_API_KEY: 'sk-proj-real-key-8e7f6a5b4c' },
    baseUrlVar: 'OPENAI_BASE_URL',
    model: 'gpt-4.1-mini',
    edit: {
      kind: 'tool_call',
      name: 'write',
      args: { filePath: 'NOTES.md', content: CONTENT },
      usage: EDIT_USAGE,
    },
    credentialVar: 'OPENCODE_CONFIG_CONTENT',
    sideCalls: true,
  },
];

const ANSWER: Step = {
  kind: 'answer',
  text: 'Wrote NOTES.md.',
  usage: { input: 2400, output: 180, cacheRead: 800 },
};
const SIDE: Extract<Step, { kind: 'answer' }> = {
  kind: 'answer',
  text: 'Notes',
  usage: { input: 40, output: 3 },
};

/** What the upstream served, priced as the ledger prices it. */
function servedCost(requests: RecordedRequest[]): number {
  let total = 0;
  for (const r of requests) {
    if (!r.served) continue;
    const u = r.served;
    total += priceCall(
      {
        inputTokens: u.input + (u.cacheRead ?? 0) + (u.cacheWrite ?? 0),
        cachedInputTokens: u.cacheRead ?? 0,
        cacheWriteTokens: u.cacheWrite ?? 0,
        outputTokens: u.output,
      },
      tokenPriceFor(r.servedModel),
    );
  }
  return total;
}

function servedTokens(requests: RecordedRequest[]) {
  const served = requests.flatMap((r) => (r.served ? [r.served] : []));
  return {
    input: served.reduce((n, u) => n + u.input + (u.cacheRead ?? 0) + (u.cacheWrite ?? 0), 0),
    cached: served.reduce((n, u) => n + (u.cacheRead ?? 0), 0),
    output: served.reduce((n, u) => n + u.output, 0),
  };
}

/** Requests that offered the model tools: the script's own turns (side calls set apart). */
const turns = (requests: RecordedRequest[]) =>
  requests.filter((r) => {
    const tools = (r.body as { tools?: unknown[] } | undefined)?.tools;
    return Array.isArray(tools) && tools.length > 0;
  });

describe.each(CASES)('the real $name CLI through the platform and the model gateway', (c) => {
  let dir: string;
  let home: string;
  let remote: string;
  let server: RunningServer;
  let token: string;
  let upstream: ScriptedUpstream;
  let proxy: RecordingProxy;
  const realKey = Object.values(c.key)[0] as string;

  beforeAll(async () => {
    dir = tempDir(`autodev-real-${c.name}-`);
    remote = makeRemote(dir);
    home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    upstream = await startScriptedUpstream({
      protocol: c.protocol,
      script: [{ kind: 'hang' }],
      sideAnswer: c.sideCalls ? SIDE : undefined,
    });
    proxy = await startRecordingProxy();
    const upper = c.name.toUpperCase();
    server = await startServer(
      platformEnv(home, {
        ...c.key,
        [c.baseUrlVar]: upstream.baseUrl,
        [`AUTODEV_${upper}_BIN`]: realCli(c.name),
        ...(c.model ? { [`AUTODEV_${upper}_MODEL`]: c.model } : {}),
        AUTODEV_CONCURRENCY: '1',
        AUTODEV_PROVIDER_RATE: '1000',
        AUTODEV_KEEP_WORKSPACES: '1',
        // below a CLI's own loop detection, or the default (8) to see the CLI's stop
        ...(c.ownLoopStop ? {} : { AUTODEV_LOOP_THRESHOLD: String(LOOP_THRESHOLD) }),
        AUTODEV_LOG_LEVEL: 'INFO',
        // anything sent past the loopback goes to the recording proxy
        HTTPS_PROXY: proxy.url,
        HTTP_PROXY: proxy.url,
        NO_PROXY: '127.0.0.1,localhost',
      }),
    );
    token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
  });

  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
    await proxy?.close();
  });

  async function submit(prompt: string, limits: Record<string, number> = {}): Promise<Task> {
    const res = await fetch(`${server.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repo: remote, prompt, provider: c.name, pin: true, limits }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Task;
  }

  async function get(id: string): Promise<Task> {
    const res = await fetch(`${server.url}/v1/tasks/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await res.json()) as Task;
  }

  const settled = (id: string, statuses: string[], ms = 90_000) =>
    until(
      async () => {
        const t = await get(id);
        return statuses.includes(t.status) ? t : undefined;
      },
      ms,
      `task ${id} in ${statuses.join('|')}`,
    );

  async function providerHealth(): Promise<{ recentAttempts: number; successRate?: number }> {
    const res = await fetch(`${server.url}/v1/providers`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as {
      items: { name: string; recentAttempts: number; successRate?: number }[];
    };
    const mine = body.items.find((p) => p.name === c.name);
    if (!mine) throw new Error(`no provider ${c.name} in ${JSON.stringify(body)}`);
    return mine;
  }

  const logsOf = async (id: string) =>
    (
      await fetch(`${server.url}/v1/tasks/${id}/logs`, { headers: { authorization: `Bearer ${token}` } })
    ).text();

  it('edits a file through its own tool: the edit is committed, usage is what the upstream served, the key stays out', async () => {
    // Arrange
    upstream.setScript([c.edit, ANSWER]);
    const watch = watchProcesses(join(ROOT, '.cache/real-clis'));
    // Act
    const created = await submit('Write NOTES.md');
    const task = await settled(created.id, ['succeeded', 'failed', 'retrying']);
    const agents = watch.stop();
    // Assert: the task and its branch
    const logs = await logsOf(task.id);
    if (task.status !== 'succeeded')
      throw new Error(`${task.status}: ${JSON.stringify(task.error)}\n${logs}`);
    const branch = `autodev/${task.id}`;
    expect(gitIn(remote, ['show', `${branch}:NOTES.md`])).toBe(CONTENT);
    // the ledger holds every call the upstream answered, tokens and dollars
    const served = upstream.requests.filter((r) => r.served);
    expect(turns(served)).toHaveLength(2);
    const calls = task.attempts[0]?.calls ?? [];
    expect(calls).toHaveLength(served.length);
    const tokens = servedTokens(served);
    expect(task.usage.inputTokens).toBe(tokens.input);
    expect(task.usage.cachedInputTokens ?? 0).toBe(tokens.cached);
    expect(task.usage.outputTokens).toBe(tokens.output);
    expect(task.usage.costUsd).toBeCloseTo(servedCost(served), 6);
    expect(task.usage.costUsd).toBeGreaterThan(0);
    // the upstream got the real key; the agent process held the session credential, never the key
    expect(JSON.stringify(upstream.requests.map((r) => r.headers))).toContain(realKey);
    expect(agents.length).toBeGreaterThan(0);
    for (const a of agents) expect(a.env.join('\n')).not.toContain(realKey);
    const credential = agents.flatMap((a) => a.env).find((e) => e.startsWith(`${c.credentialVar}=`));
    expect(credential).toContain('autodev-');
    // nor in its files, the task's logs or the server's output
    const workspace = readdirSync(join(home, 'workspaces')).find((n) => n.startsWith(task.id)) as string;
    expect(filesContaining(join(home, 'workspaces', workspace), realKey)).toEqual([]);
    expect(logs).toContain('model call');
    expect(logs).not.toContain(realKey);
    expect(server.output()).not.toContain(realKey);
  });

  it('ends a task whose maxCostUsd is below its second call as budget_exceeded after one call', async () => {
    // Arrange: the first call alone costs more than the limit
    upstream.setScript([c.edit, ANSWER]);
    const firstCall = servedCost([{ served: c.edit.usage, servedModel: c.model } as RecordedRequest]);
    // Act
    const created = await submit('Write NOTES.md', { maxCostUsd: firstCall / 2 });
    const task = await settled(created.id, ['succeeded', 'failed', 'retrying']);
    // Assert
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('budget_exceeded');
    expect(turns(upstream.requests.filter((r) => r.served))).toHaveLength(1);
    expect(task.attempts).toHaveLength(1);
    expect(task.usage.costUsd).toBeCloseTo(servedCost(upstream.requests), 6);
  });

  it('ends a scripted loop (the same tool call again and again) as loop_detected', async () => {
    // Arrange: the model asks for the same edit forever
    upstream.setScript([c.edit]);
    // Act
    const task = await settled((await submit('Write NOTES.md')).id, ['succeeded', 'failed', 'retrying']);
    // Assert: the call after LOOP_THRESHOLD repeats is refused, or the CLI stopped the loop first
    if (task.error?.code !== 'loop_detected')
      throw new Error(`${JSON.stringify(task)}\n${await logsOf(task.id)}`);
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('loop_detected');
    expect(turns(upstream.requests.filter((r) => r.served))).toHaveLength(c.ownLoopStop ?? LOOP_THRESHOLD);
    expect(task.error?.message).toMatch(c.ownLoopStop ? /Loop detected/ : /same tool call/);
  });

  // before the 429 below, which (rightly) closes the provider for its 10 minutes. Claude Code
  // 2.1.332 and opencode 1.18.33 retry a 401 for minutes on their own: the gateway ends the session
  // on the upstream's first 401, which stops the agent at once.
  it("fails a task whose upstream answers 401 as auth within seconds, and the provider's health counts it", async () => {
    // Arrange
    upstream.setScript([{ kind: 'error', status: 401, message: 'invalid x-api-key' }]);
    const before = await providerHealth();
    // Act
    const task = await settled(
      (await submit('Write NOTES.md')).id,
      ['failed', 'succeeded', 'retrying'],
      60_000,
    );
    const endedAt = Date.now();
    // Assert: the attempt ended within seconds of the first 401, classified auth
    if (task.attempts[0]?.errorClass !== 'auth')
      throw new Error(`${JSON.stringify(task.attempts)}\n${await logsOf(task.id)}`);
    const refused = turns(upstream.requests)[0];
    expect(refused).toBeDefined();
    expect(endedAt - (refused?.at ?? 0)).toBeLessThan(10_000);
    expect(task.status).toBe('failed');
    expect(task.attempts).toHaveLength(1);
    expect(task.error?.message).toContain('401');
    // the provider's breaker and success rate heard of it
    const after = await providerHealth();
    expect(after.recentAttempts).toBe(before.recentAttempts + 1);
    const successes = (h: { recentAttempts: number; successRate?: number }) =>
      Math.round((h.successRate ?? 0) * h.recentAttempts);
    expect(successes(after)).toBe(successes(before));
  });

  it('parks a task rate-limited for 10 minutes within seconds of the 429', async () => {
    // Arrange
    upstream.setScript([{ kind: 'error', status: 429, headers: { 'retry-after': '600' } }]);
    const before = Date.now();
    // Act
    const id = (await submit('Write NOTES.md')).id;
    const task = await settled(id, ['retrying', 'failed', 'succeeded']);
    const parkedAt = Date.now();
    // Assert: from the upstream's 429 to the task waiting, not the CLI's own minutes of retries
    const limited = turns(upstream.requests)[0];
    expect(limited).toBeDefined();
    expect(parkedAt - (limited?.at ?? 0)).toBeLessThan(10_000);
    expect(turns(upstream.requests)).toHaveLength(1);
    expect(task.status).toBe('retrying');
    expect(task.attempts[0]?.errorClass).toBe('rate_limit');
    expect(task.notBefore ?? 0).toBeGreaterThanOrEqual(before + 590_000);
    await fetch(`${server.url}/v1/tasks/${task.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
  });

  it('sent nothing past the loopback', () => {
    expect(proxy.seen).toEqual([]);
  });
});
