import { accessSync, constants, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { createDrivers, DRIVERS, driverFor } from '../../../lib/worker/drivers/index.js';
import { classifyText, jsonBlocks } from '../../../lib/worker/drivers/json-lines.js';
import { FAKES_BIN } from './harness.js';

describe('DRIVERS', () => {
  it('holds one driver per provider CLI, under its standard binary name', () => {
    expect(Object.fromEntries(Object.entries(DRIVERS).map(([name, d]) => [name, d.bin]))).toEqual({
      claude: 'claude',
      codex: 'codex',
      gemini: 'gemini',
      cursor: 'cursor-agent',
      opencode: 'opencode',
      aider: 'aider',
    });
    for (const [name, d] of Object.entries(DRIVERS)) expect(d.name).toBe(name);
    expect(driverFor('cursor')).toBe(DRIVERS.cursor);
    expect(driverFor('nope')).toBeUndefined();
  });

  it('has an executable fake CLI for every driver', () => {
    for (const d of Object.values(DRIVERS))
      expect(() => accessSync(join(FAKES_BIN, d.bin), constants.X_OK)).not.toThrow();
  });

  it('names credential variables for every hosted driver', () => {
    for (const d of Object.values(DRIVERS)) expect(d.credentialEnv.length).toBeGreaterThan(0);
  });
});

describe('jsonBlocks', () => {
  it('finds pretty-printed and one-line objects among other text', () => {
    // Arrange
    const text = [
      'YOLO mode is enabled. All tool calls will be automatically approved.',
      '{',
      '  "session_id": "s",',
      '  "error": { "type": "ApiError", "message": "a } in a string", "code": 503 }',
      '}',
      'not json {"inline": true}',
      '{"type":"result"}',
    ].join('\n');
    // Act
    const blocks = jsonBlocks(text);
    // Assert
    expect(blocks).toEqual([
      { session_id: 's', error: { type: 'ApiError', message: 'a } in a string', code: 503 } },
      { type: 'result' },
    ]);
  });

  it('skips an object cut short', () => {
    expect(jsonBlocks('{"a": 1,\n "b": ')).toEqual([]);
  });
});

describe('classifyText', () => {
  it.each([
    ['Error: Authentication required. Please run login', 'auth'],
    ['API key not valid. Please pass a valid API key.', 'auth'],
    [
      'The input token count (1203455) exceeds the maximum number of tokens allowed (1048576).',
      'context_overflow',
    ],
    ['Rate limit exceeded (429 Too Many Requests)', 'rate_limit'],
    ['The model provider is overloaded right now', 'overloaded'],
    ['segmentation fault', undefined],
  ])('%s → %s', (text, expected) => {
    expect(classifyText(text)).toBe(expected);
  });
});

describe('createDrivers', () => {
  it('switches Codex, opencode and aider to local models from configuration', () => {
    // Act
    const drivers = createDrivers({
      AUTODEV_CODEX_OSS: 'lmstudio',
      AUTODEV_OPENCODE_BASE_URL: 'http://127.0.0.1:8080/v1',
      AUTODEV_OPENCODE_MODELS: 'qwen3-coder, devstral',
      AUTODEV_OPENCODE_PROVIDER: 'llamacpp',
      AUTODEV_AIDER_OLLAMA_API_BASE: 'http://127.0.0.1:11434',
    });
    const input = { prompt: 'p', workdir: '/w/repo', homeDir: '/w/home' };
    // Assert
    expect(
      drivers.codex?.command({ ...input, homeDir: mkdtempSync(join(tmpdir(), 'autodev-')) }).args,
    ).toContain('lmstudio');
    const opencode = drivers.opencode?.command(input);
    expect(opencode?.args.slice(3, 5)).toEqual(['-m', 'llamacpp/qwen3-coder']);
    expect(JSON.parse(opencode?.env.OPENCODE_CONFIG_CONTENT ?? '{}').provider.llamacpp.options.baseURL).toBe(
      'http://127.0.0.1:8080/v1',
    );
    expect(drivers.aider?.command({ ...input, model: 'qwen3' }).env.OLLAMA_API_BASE).toBe(
      'http://127.0.0.1:11434',
    );
    for (const name of ['codex', 'opencode', 'aider']) expect(drivers[name]?.credentialEnv).toEqual([]);
  });

  it('uses the hosted defaults without configuration', () => {
    const drivers = createDrivers({});
    expect(drivers.codex?.credentialEnv).toEqual(['CODEX_API_KEY', 'OPENAI_API_KEY']);
    const homeDir = mkdtempSync(join(tmpdir(), 'opencode-home-'));
    const config = drivers.opencode?.command({ prompt: 'p', workdir: '/w', homeDir }).env
      .OPENCODE_CONFIG_CONTENT;
    expect(JSON.parse(config ?? '{}').provider).toBeUndefined();
  });

  it('refuses a local opencode server without its models', () => {
    expect(() => createDrivers({ AUTODEV_OPENCODE_BASE_URL: 'http://127.0.0.1:11434/v1' })).toThrow(
      /AUTODEV_OPENCODE_MODELS/,
    );
  });
});
