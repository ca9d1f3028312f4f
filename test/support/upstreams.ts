/**
 * Scripted model upstreams for tests: one HTTP server on 127.0.0.1 speaking one vendor's wire
 * protocol (Anthropic Messages, OpenAI Responses, OpenAI Chat Completions, Gemini), answering each
 * model request with the next step of a script (a tool call, a final answer with known usage, an
 * error with headers, a hang), as JSON or as a server-sent event stream when the request asks for one.
 * When the script runs out, the last step repeats. A request that offers the model no tools is a
 * CLI's side call (opencode's session title, Gemini CLI's model router): it gets `sideAnswer` and
 * does not advance the script.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Protocol = 'anthropic' | 'openai-responses' | 'openai-chat' | 'gemini';

export interface ScriptUsage {
  /** Fresh input tokens (neither read from nor written to the cache). */
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
}

export type Step =
  | { kind: 'tool_call'; name: string; args: Record<string, unknown>; usage: ScriptUsage }
  | { kind: 'answer'; text: string; usage: ScriptUsage }
  | { kind: 'error'; status: number; headers?: Record<string, string>; message?: string }
  | { kind: 'hang' };

export interface RecordedRequest {
  /** When it arrived (ms since the epoch). */
  at: number;
  method: string;
  /** What the upstream answered with: the usage it served, when it served an answer. */
  served?: ScriptUsage;
  /** The model named in that answer. */
  servedModel?: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface ScriptedUpstream {
  /** The base URL a CLI (or the gateway) is given for this vendor. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Lets a held stream (`holdStreams`) send the rest of its events. */
  release(): void;
  /** Resolves when a held stream has sent its first event and waits. */
  held(): Promise<void>;
  /** Streams that ended (their last byte written). */
  streamsEnded: number;
  /** Answers from `steps` from now on, from the first; forgets the requests seen so far. */
  setScript(steps: Step[]): void;
  close(): Promise<void>;
}

export interface UpstreamOptions {
  protocol: Protocol;
  script: Step[];
  model?: string;
  /** Stop each stream after its first event until `release()`. */
  holdStreams?: boolean;
  /** The answer to a request without tools (a side call), instead of the script's next step. */
  sideAnswer?: Extract<Step, { kind: 'answer' }>;
}

const DEFAULT_MODELS: Record<Protocol, string> = {
  anthropic: 'claude-sonnet-4-5-20250929',
  'openai-responses': 'gpt-5-codex',
  'openai-chat': 'gpt-4.1-mini',
  gemini: 'gemini-2.5-pro',
};

type Events = { event?: string; data: unknown }[];

export async function startScriptedUpstream(options: UpstreamOptions): Promise<ScriptedUpstream> {
  const { protocol } = options;
  let script = options.script;
  const model = options.model ?? DEFAULT_MODELS[protocol];
  const requests: RecordedRequest[] = [];
  let next = 0;
  let answers = 0;
  let releaseHeld: () => void = () => {};
  let released = new Promise<void>((r) => {
    releaseHeld = r;
  });
  let announceHeld: () => void = () => {};
  const heldOnce = new Promise<void>((r) => {
    announceHeld = r;
  });
  const state = { streamsEnded: 0 };

  const server = createServer(async (req, res) => {
    const raw = await readAll(req);
    let body: unknown;
    try {
      body = raw.length > 0 ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const recorded: RecordedRequest = {
      at: Date.now(),
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
    };
    requests.push(recorded);
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (!routeMatches(protocol, req.method ?? '', url.pathname)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${url.pathname}` } }));
      return;
    }
    let step: Step | undefined;
    if (options.sideAnswer && !offersTools(body)) step = options.sideAnswer;
    else {
      step = script[Math.min(next, script.length - 1)];
      next += 1;
    }
    if (!step || step.kind === 'hang') return; // never answer
    if (step.kind === 'error') return sendError(res, protocol, step);
    recorded.served = step.usage;
    const streaming = wantsStream(protocol, body, url);
    // the scripted model when one is given, else the one asked for
    const reqModel =
      options.model ??
      (protocol === 'gemini' ? model : (str((body as Record<string, unknown>)?.model) ?? model));
    recorded.servedModel = reqModel;
    answers += 1;
    if (!streaming) return sendJson(res, 200, withIds(jsonAnswer(protocol, step, reqModel), answers));
    const events = withIds(streamAnswer(protocol, step, reqModel, body), answers);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const [i, ev] of events.entries()) {
      res.write(sse(ev));
      if (i === 0 && options.holdStreams) {
        announceHeld();
        await released;
      }
    }
    if (protocol === 'openai-chat') res.write('data: [DONE]\n\n');
    res.end();
    state.streamsEnded += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    baseUrl: protocol.startsWith('openai') ? `${origin}/v1` : origin,
    requests,
    release: () => {
      releaseHeld();
      released = Promise.resolve();
    },
    held: () => heldOnce,
    get streamsEnded() {
      return state.streamsEnded;
    },
    setScript(steps) {
      script = steps;
      next = 0;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        releaseHeld();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function routeMatches(protocol: Protocol, method: string, path: string): boolean {
  if (method !== 'POST') return false;
  if (protocol === 'anthropic') return path === '/v1/messages';
  if (protocol === 'openai-responses') return path === '/v1/responses';
  if (protocol === 'openai-chat') return path === '/v1/chat/completions';
  return /^\/v1beta\/models\/[^/:]+:(generateContent|streamGenerateContent)$/.test(path);
}

/** Whether a request offers the model any tool (every protocol names them `tools`). */
function offersTools(body: unknown): boolean {
  const tools = (body as Record<string, unknown> | undefined)?.tools;
  return Array.isArray(tools) && tools.length > 0;
}

function wantsStream(protocol: Protocol, body: unknown, url: URL): boolean {
  if (protocol === 'gemini')
    return url.pathname.endsWith(':streamGenerateContent') && url.searchParams.get('alt') === 'sse';
  return (body as Record<string, unknown> | undefined)?.stream === true;
}

const IDS = /"(msg_01|toolu_01|resp_1|fc_1|call_1|chatcmpl-1|msg_1)"/g;

/**
 * The answer with ids of its own (message, response, tool call), as every real answer has: a CLI
 * merges messages that share an id (Claude Code does), which would hide a repeated call.
 */
function withIds<T>(answer: T, n: number): T {
  return JSON.parse(JSON.stringify(answer).replace(IDS, `"$1_${n}"`)) as T;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function sse(ev: { event?: string; data: unknown }): string {
  return `${ev.event ? `event: ${ev.event}\n` : ''}data: ${JSON.stringify(ev.data)}\n\n`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, protocol: Protocol, step: Extract<Step, { kind: 'error' }>) {
  const message = step.message ?? `scripted error ${step.status}`;
  let body: unknown;
  if (protocol === 'anthropic') {
    const type: Record<number, string> = {
      401: 'authentication_error',
      429: 'rate_limit_error',
      529: 'overloaded_error',
    };
    body = { type: 'error', error: { type: type[step.status] ?? 'api_error', message } };
  } else if (protocol === 'gemini') {
    const status: Record<number, string> = {
      401: 'UNAUTHENTICATED',
      429: 'RESOURCE_EXHAUSTED',
      503: 'UNAVAILABLE',
    };
    body = { error: { code: step.status, message, status: status[step.status] ?? 'INTERNAL' } };
  } else {
    body = {
      error: {
        message,
        type: step.status === 429 ? 'rate_limit_exceeded' : 'server_error',
        param: null,
        code: null,
      },
    };
  }
  sendJson(res, step.status, body, step.headers);
}

// ------------------------------------------------------------------------------------ answers

type Answer = Extract<Step, { kind: 'tool_call' | 'answer' }>;

function anthropicUsage(u: ScriptUsage) {
  return {
    input_tokens: u.input,
    cache_creation_input_tokens: u.cacheWrite ?? 0,
    cache_read_input_tokens: u.cacheRead ?? 0,
    output_tokens: u.output,
  };
}

function totalInput(u: ScriptUsage): number {
  return u.input + (u.cacheRead ?? 0) + (u.cacheWrite ?? 0);
}

function openaiUsage(u: ScriptUsage) {
  return {
    input_tokens: totalInput(u),
    input_tokens_details: { cached_tokens: u.cacheRead ?? 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: totalInput(u) + u.output,
  };
}

function chatUsage(u: ScriptUsage) {
  return {
    prompt_tokens: totalInput(u),
    completion_tokens: u.output,
    total_tokens: totalInput(u) + u.output,
    prompt_tokens_details: { cached_tokens: u.cacheRead ?? 0 },
  };
}

function geminiUsage(u: ScriptUsage) {
  return {
    promptTokenCount: totalInput(u),
    cachedContentTokenCount: u.cacheRead ?? 0,
    candidatesTokenCount: u.output,
    totalTokenCount: totalInput(u) + u.output,
  };
}

function anthropicContent(step: Answer) {
  return step.kind === 'answer'
    ? [{ type: 'text', text: step.text }]
    : [{ type: 'tool_use', id: 'toolu_01', name: step.name, input: step.args }];
}

function responsesOutput(step: Answer) {
  return step.kind === 'answer'
    ? [
        {
          type: 'message',
          id: 'msg_1',
          role: 'assistant',
          content: [{ type: 'output_text', text: step.text }],
        },
      ]
    : [
        {
          type: 'function_call',
          id: 'fc_1',
          call_id: 'call_1',
          name: step.name,
          arguments: JSON.stringify(step.args),
        },
      ];
}

function geminiParts(step: Answer) {
  return step.kind === 'answer'
    ? [{ text: step.text }]
    : [{ functionCall: { name: step.name, args: step.args } }];
}

function jsonAnswer(protocol: Protocol, step: Answer, model: string): unknown {
  if (protocol === 'anthropic')
    return {
      id: 'msg_01',
      type: 'message',
      role: 'assistant',
      model,
      content: anthropicContent(step),
      stop_reason: step.kind === 'answer' ? 'end_turn' : 'tool_use',
      usage: anthropicUsage(step.usage),
    };
  if (protocol === 'openai-responses')
    return {
      id: 'resp_1',
      object: 'response',
      model,
      status: 'completed',
      output: responsesOutput(step),
      usage: openaiUsage(step.usage),
    };
  if (protocol === 'openai-chat') {
    const message =
      step.kind === 'answer'
        ? { role: 'assistant', content: step.text }
        : {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: step.name, arguments: JSON.stringify(step.args) },
              },
            ],
          };
    return {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      model,
      choices: [{ index: 0, message, finish_reason: step.kind === 'answer' ? 'stop' : 'tool_calls' }],
      usage: chatUsage(step.usage),
    };
  }
  return {
    candidates: [{ content: { role: 'model', parts: geminiParts(step) }, finishReason: 'STOP', index: 0 }],
    usageMetadata: geminiUsage(step.usage),
    modelVersion: model,
  };
}

function streamAnswer(protocol: Protocol, step: Answer, model: string, body: unknown): Events {
  if (protocol === 'anthropic') return anthropicStream(step, model);
  if (protocol === 'openai-responses') return responsesStream(step, model);
  if (protocol === 'openai-chat') return chatStream(step, model, body);
  const parts = geminiParts(step);
  const partial = { ...geminiUsage(step.usage), candidatesTokenCount: 1 };
  return [
    {
      data: {
        candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, index: 0 }],
        usageMetadata: partial,
        modelVersion: model,
      },
    },
    {
      data: {
        candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
        usageMetadata: geminiUsage(step.usage),
        modelVersion: model,
      },
    },
  ];
}

function anthropicStream(step: Answer, model: string): Events {
  const u = anthropicUsage(step.usage);
  const block =
    step.kind === 'answer'
      ? { start: { type: 'text', text: '' }, delta: { type: 'text_delta', text: step.text } }
      : {
          start: { type: 'tool_use', id: 'toolu_01', name: step.name, input: {} },
          delta: { type: 'input_json_delta', partial_json: JSON.stringify(step.args) },
        };
  return [
    {
      event: 'message_start',
      data: {
        type: 'message_start',
        message: {
          id: 'msg_01',
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          usage: { ...u, output_tokens: 1 },
        },
      },
    },
    {
      event: 'content_block_start',
      data: { type: 'content_block_start', index: 0, content_block: block.start },
    },
    { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: block.delta } },
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    {
      event: 'message_delta',
      data: {
        type: 'message_delta',
        delta: { stop_reason: step.kind === 'answer' ? 'end_turn' : 'tool_use' },
        usage: { output_tokens: u.output_tokens },
      },
    },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ];
}

function responsesStream(step: Answer, model: string): Events {
  const final = {
    id: 'resp_1',
    object: 'response',
    model,
    status: 'completed',
    output: responsesOutput(step),
    usage: openaiUsage(step.usage),
  };
  const item = responsesOutput(step)[0];
  const middle: Events =
    step.kind === 'answer'
      ? [
          {
            event: 'response.output_item.added',
            data: { type: 'response.output_item.added', output_index: 0, item: { ...item, content: [] } },
          },
          {
            event: 'response.output_text.delta',
            data: {
              type: 'response.output_text.delta',
              item_id: 'msg_1',
              output_index: 0,
              content_index: 0,
              delta: step.text,
            },
          },
          {
            event: 'response.output_item.done',
            data: { type: 'response.output_item.done', output_index: 0, item },
          },
        ]
      : [
          {
            event: 'response.output_item.done',
            data: { type: 'response.output_item.done', item: responsesOutput(step)[0] },
          },
        ];
  return [
    {
      event: 'response.created',
      data: {
        type: 'response.created',
        response: { ...final, status: 'in_progress', output: [], usage: null },
      },
    },
    ...middle,
    { event: 'response.completed', data: { type: 'response.completed', response: final } },
  ];
}

function chatStream(step: Answer, model: string, body: unknown): Events {
  const chunk = (delta: unknown, finish: string | null) => ({
    data: {
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    },
  });
  const delta =
    step.kind === 'answer'
      ? { content: step.text }
      : {
          tool_calls: [
            {
              index: 0,
              id: 'call_1',
              type: 'function',
              function: { name: step.name, arguments: JSON.stringify(step.args) },
            },
          ],
        };
  const events: Events = [
    chunk({ role: 'assistant', content: '' }, null),
    chunk(delta, null),
    chunk({}, step.kind === 'answer' ? 'stop' : 'tool_calls'),
  ];
  const options = (body as { stream_options?: { include_usage?: boolean } } | undefined)?.stream_options;
  if (options?.include_usage)
    events.push({
      data: {
        id: 'chatcmpl-1',
        object: 'chat.completion.chunk',
        model,
        choices: [],
        usage: chatUsage(step.usage),
      },
    });
  return events;
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
