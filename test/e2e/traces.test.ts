import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import { parseTraceParent } from '../../lib/core/trace-context.js';
import { MINI_CLAUDE } from '../gateway/mini-claude.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.js';
import { type ScriptedUpstream, type Step, startScriptedUpstream } from '../support/upstreams.js';

const MODEL = 'claude-sonnet-4-5-20250929';
const EDIT: Step = {
  kind: 'tool_call',
  name: 'write_file',
  args: { path: 'NOTES.md', text: 'written through the gateway\n' },
  usage: { input: 1000, output: 50 },
};
const ANSWER: Step = { kind: 'answer', text: 'Wrote NOTES.md.', usage: { input: 2000, output: 300 } };

describe('one trace per task: API, queue, attempt, worker steps and model calls (OTLP/HTTP)', () => {
  let dir: string;
  let server: RunningServer;
  let receiver: OtlpReceiver;
  let upstream: ScriptedUpstream;
  let token: string;
  let task: Task;
  let spans: ReceivedSpan[];

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });

  beforeAll(async () => {
    // Arrange: a receiver, a scripted Anthropic upstream, a repository with one quality gate
    dir = tempDir();
    receiver = await startOtlpReceiver();
    upstream = await startScriptedUpstream({ protocol: 'anthropic', script: [EDIT, ANSWER] });
    const remote = makeRemote(dir, {
      'README.md': '# traced\n',
      '.autodev.yml': 'gates:\n  - name: notes\n    run: test -f NOTES.md\n',
    });
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const bin = join(dir, 'mini-claude');
    writeFileSync(bin, MINI_CLAUDE);
    chmodSync(bin, 0o755);
    chmodSync(dir, 0o755);
    server = await startServer(
      platformEnv(home, {
        ANTHROPIC_API_KEY: 'sk-ant-real-provider-key',
        ANTHROPIC_BASE_URL: upstream.baseUrl,
        AUTODEV_CLAUDE_BIN: bin,
        AUTODEV_LOG_LEVEL: 'INFO',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      }),
    );
    token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
    // Act: one task through the gateway, to the end
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({ repo: remote, prompt: 'Write the notes', provider: 'claude' }),
    });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as Task).id;
    task = await until(
      async () => {
        const t = (await (await api(`/v1/tasks/${id}`)).json()) as Task;
        return ['succeeded', 'failed'].includes(t.status) ? t : undefined;
      },
      60_000,
      'the task to end',
    );
    // spans leave in batches: wait for the attempt's (it ends last)
    spans = await until(
      async () =>
        receiver.spans.some((s) => s.name === 'attempt' && s.traceId === task.traceId)
          ? receiver.spans
          : undefined,
      15_000,
      'the attempt span',
    );
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
    await receiver?.close();
  });

  const one = (name: string) => {
    const found = spans.filter((s) => s.name === name && s.traceId === task.traceId);
    expect(found.map((s) => s.name)).toEqual([name]);
    return found[0] as ReceivedSpan;
  };

  it('records the trace id on the task (GET /v1/tasks/{id} and autodev status)', async () => {
    expect(task.status).toBe('succeeded');
    expect(task.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(parseTraceParent(task.traceParent)?.traceId).toBe(task.traceId);
    const status = await cli(['status', task.id], { ...server.env, AUTODEV_TOKEN: token });
    expect(status.stdout).toContain(`trace:   ${task.traceId}`);
  });

  it('exports every span of the task in its trace, by OTLP/HTTP JSON', () => {
    expect(new Set(receiver.contentTypes)).toEqual(new Set(['application/json']));
    const ours = spans.filter((s) => s.traceId === task.traceId);
    expect(new Set(ours.map((s) => s.name))).toEqual(
      new Set([
        'POST /v1/tasks',
        'queue wait',
        'attempt',
        'workspace',
        'agent run',
        'gates',
        'commit',
        'push',
        'pull request',
        `chat ${MODEL}`,
      ]),
    );
    // what is in no other trace: the status polls, each its own request
    expect(spans.filter((s) => s.traceId !== task.traceId).map((s) => s.name)).toEqual(
      spans.filter((s) => s.traceId !== task.traceId).map(() => 'GET /v1/tasks/{id}'),
    );
    expect(ours.every((s) => s.service === 'autodev')).toBe(true);
  });

  it('nests them: API → queue wait and attempt → worker steps → model calls', () => {
    const post = one('POST /v1/tasks');
    expect(post.parentSpanId).toBe('');
    expect(post.kind).toBe(2); // SERVER
    expect(post.attributes['http.response.status_code']).toBe(201);
    expect(parseTraceParent(task.traceParent)?.spanId).toBe(post.spanId);
    const wait = one('queue wait');
    const attempt = one('attempt');
    expect(wait.parentSpanId).toBe(post.spanId);
    expect(attempt.parentSpanId).toBe(post.spanId);
    expect(attempt.attributes).toMatchObject({
      'autodev.task_id': task.id,
      'autodev.attempt': 1,
      'autodev.provider': 'claude',
    });
    expect(wait.endMs).toBeLessThanOrEqual(attempt.startMs + 1);
    for (const step of ['workspace', 'agent run', 'gates', 'commit', 'push', 'pull request'])
      expect([step, one(step).parentSpanId]).toEqual([step, attempt.spanId]);
    const agent = one('agent run');
    const calls = spans.filter((s) => s.name === `chat ${MODEL}`);
    expect(calls).toHaveLength(2);
    for (const c of calls) {
      expect(c.parentSpanId).toBe(agent.spanId);
      expect(c.kind).toBe(3); // CLIENT
      expect(c.startMs).toBeGreaterThanOrEqual(agent.startMs);
      expect(c.endMs).toBeLessThanOrEqual(agent.endMs);
    }
  });

  it('gives each model call the GenAI attributes: provider, models, the tokens served, the cost', () => {
    const ledger = task.attempts[0]?.calls ?? [];
    expect(ledger.map((c) => [c.inputTokens, c.outputTokens])).toEqual([
      [1000, 50],
      [2000, 300],
    ]);
    const calls = spans
      .filter((s) => s.name === `chat ${MODEL}`)
      .sort(
        (a, b) =>
          a.startMs - b.startMs ||
          Number(a.attributes['gen_ai.usage.input_tokens']) -
            Number(b.attributes['gen_ai.usage.input_tokens']),
      );
    expect(calls.map((c) => c.attributes)).toEqual(
      ledger.map((c) =>
        expect.objectContaining({
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'anthropic',
          'gen_ai.system': 'anthropic',
          'gen_ai.request.model': MODEL,
          'gen_ai.response.model': MODEL,
          'gen_ai.usage.input_tokens': c.inputTokens,
          'gen_ai.usage.output_tokens': c.outputTokens,
          'autodev.cost_usd': c.costUsd,
        }),
      ),
    );
    expect(calls.reduce((sum, c) => sum + Number(c.attributes['autodev.cost_usd']), 0)).toBeCloseTo(
      task.usage.costUsd,
      6,
    );
  });

  it('puts the trace id in every log line of the task and in the server log lines about it', async () => {
    const text = await (await api(`/v1/tasks/${task.id}/logs`)).text();
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.filter((l) => !l.includes(` trace_id=${task.traceId} `))).toEqual([]);
    const page = (await (
      await fetch(`${server.url}/v1/tasks/${task.id}/logs`, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      })
    ).json()) as { lines: { traceId?: string }[] };
    expect(page.lines).toHaveLength(lines.length);
    expect(page.lines.filter((l) => l.traceId !== task.traceId)).toEqual([]);
    const structured = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { taskId?: string; traceId?: string; audit?: { target?: string } });
    const aboutTask = structured.filter((l) => l.taskId === task.id || l.audit?.target === task.id);
    expect(aboutTask.length).toBeGreaterThan(0);
    expect(aboutTask.filter((l) => l.traceId !== task.traceId)).toEqual([]);
  });
});
