/** Requests as each vendor's CLI sends them, made with node's fetch against a base URL and a key. */
import type { Protocol } from '../support/upstreams.js';

export interface ClientCall {
  protocol: Protocol;
  baseUrl: string;
  key: string;
  stream?: boolean;
  /** Tool calls already in the conversation: each adds an assistant turn with that call and its result. */
  history?: { name: string; args: Record<string, unknown> }[];
  /** Where a Gemini key goes: the header (default) or the `key` query parameter. */
  geminiKeyIn?: 'header' | 'query';
  signal?: AbortSignal;
}

export function modelRequest(c: ClientCall): { url: string; init: RequestInit } {
  const history = c.history ?? [];
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  let url: string;
  let body: unknown;
  if (c.protocol === 'anthropic') {
    url = `${c.baseUrl}/v1/messages`;
    headers['x-api-key'] = c.key;
    headers['anthropic-version'] = '2023-06-01';
    const messages: unknown[] = [{ role: 'user', content: 'Fix the bug.' }];
    history.forEach((h, i) => {
      messages.push({
        role: 'assistant',
        content: [{ type: 'tool_use', id: `toolu_${i}`, name: h.name, input: h.args }],
      });
      messages.push({
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: `toolu_${i}`, content: 'ok' }],
      });
    });
    body = { model: 'claude-sonnet-4-5-20250929', max_tokens: 1024, messages, stream: c.stream ?? false };
  } else if (c.protocol === 'openai-responses') {
    url = `${c.baseUrl}/responses`;
    headers.authorization = `Bearer ${c.key}`;
    const input: unknown[] = [
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Fix the bug.' }] },
    ];
    history.forEach((h, i) => {
      input.push({
        type: 'function_call',
        call_id: `call_${i}`,
        name: h.name,
        arguments: JSON.stringify(h.args),
      });
      input.push({ type: 'function_call_output', call_id: `call_${i}`, output: 'ok' });
    });
    body = { model: 'gpt-5-codex', input, stream: c.stream ?? false };
  } else if (c.protocol === 'openai-chat') {
    url = `${c.baseUrl}/chat/completions`;
    headers.authorization = `Bearer ${c.key}`;
    const messages: unknown[] = [{ role: 'user', content: 'Fix the bug.' }];
    history.forEach((h, i) => {
      messages.push({
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: `call_${i}`,
            type: 'function',
            function: { name: h.name, arguments: JSON.stringify(h.args) },
          },
        ],
      });
      messages.push({ role: 'tool', tool_call_id: `call_${i}`, content: 'ok' });
    });
    body = { model: 'gpt-4.1-mini', messages, stream: c.stream ?? false };
  } else {
    const method = c.stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
    url = `${c.baseUrl}/v1beta/models/gemini-2.5-pro:${method}`;
    if (c.geminiKeyIn === 'query') url += `${url.includes('?') ? '&' : '?'}key=${encodeURIComponent(c.key)}`;
    else headers['x-goog-api-key'] = c.key;
    const contents: unknown[] = [{ role: 'user', parts: [{ text: 'Fix the bug.' }] }];
    for (const h of history) {
      contents.push({ role: 'model', parts: [{ functionCall: { name: h.name, args: h.args } }] });
      contents.push({
        role: 'user',
        parts: [{ functionResponse: { name: h.name, response: { output: 'ok' } } }],
      });
    }
    body = { contents };
  }
  return { url, init: { method: 'POST', headers, body: JSON.stringify(body), signal: c.signal } };
}

export async function callModel(c: ClientCall): Promise<{ status: number; text: string; headers: Headers }> {
  const { url, init } = modelRequest(c);
  const res = await fetch(url, init);
  return { status: res.status, text: await res.text(), headers: res.headers };
}
