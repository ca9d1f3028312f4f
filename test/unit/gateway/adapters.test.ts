import { describe, expect, it } from '@jest/globals';
import { anthropicMessages } from '../../../lib/gateway/adapters/anthropic.js';
import { geminiGenerate } from '../../../lib/gateway/adapters/gemini.js';
import { openaiChat, openaiResponses } from '../../../lib/gateway/adapters/openai.js';

describe('tool calls of the latest assistant turn', () => {
  it('Responses: the run of parallel calls nearest the end, arguments compared by value', () => {
    const input = [
      { type: 'message', role: 'user', content: 'go' },
      { type: 'function_call', call_id: 'a', name: 'read', arguments: '{"path":"x"}' },
      { type: 'function_call_output', call_id: 'a', output: 'ok' },
      { type: 'reasoning', summary: [] },
      { type: 'function_call', call_id: 'b', name: 'shell', arguments: '{"cmd":"ls","cwd":"/w"}' },
      { type: 'function_call', call_id: 'c', name: 'read', arguments: '{"path":"y"}' },
      { type: 'function_call_output', call_id: 'b', output: 'ok' },
      { type: 'function_call_output', call_id: 'c', output: 'ok' },
    ];
    const info = openaiResponses.inspect({ model: 'gpt-5', input }, '/responses');
    expect(info.toolCalls).toBe('shell({"cmd":"ls","cwd":"/w"});read({"path":"y"})');
    const respaced = openaiResponses.inspect(
      { input: [{ type: 'function_call', name: 'shell', arguments: '{ "cwd": "/w", "cmd": "ls" }' }] },
      '/responses',
    );
    expect(respaced.toolCalls).toBe('shell({"cmd":"ls","cwd":"/w"})');
    expect(info).toMatchObject({ model: 'gpt-5', historyLength: 8 });
  });

  it('no tool call when the latest turn has none', () => {
    expect(
      openaiResponses.inspect({ input: [{ role: 'user', content: 'hi' }] }, '/responses').toolCalls,
    ).toBeUndefined();
    expect(
      anthropicMessages.inspect({ messages: [{ role: 'user', content: 'hi' }] }, '/v1/messages').toolCalls,
    ).toBeUndefined();
    expect(openaiChat.inspect({ messages: 'nonsense' }, '/chat/completions').toolCalls).toBeUndefined();
  });

  it('Anthropic, Chat Completions and Gemini: the last assistant message', () => {
    const anthropic = anthropicMessages.inspect(
      {
        messages: [
          { role: 'assistant', content: [{ type: 'tool_use', name: 'old', input: {} }] },
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'hm' },
              { type: 'tool_use', name: 'Bash', input: { b: 1, a: 2 } },
            ],
          },
          { role: 'user', content: [{ type: 'tool_result', content: 'ok' }] },
        ],
      },
      '/v1/messages',
    );
    expect(anthropic.toolCalls).toBe('Bash({"a":2,"b":1})');
    const chat = openaiChat.inspect(
      { messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{"x":1}' } }] }] },
      '/chat/completions',
    );
    expect(chat.toolCalls).toBe('f({"x":1})');
    const gemini = geminiGenerate.inspect(
      {
        contents: [
          {
            role: 'model',
            parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'ls' } } }],
          },
        ],
      },
      '/v1beta/models/gemini-2.5-pro:streamGenerateContent',
    );
    expect(gemini).toMatchObject({
      model: 'gemini-2.5-pro',
      toolCalls: 'run_shell_command({"command":"ls"})',
    });
  });
});
