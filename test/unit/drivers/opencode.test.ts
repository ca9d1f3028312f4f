import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { OpencodeDriver } from '../../../lib/worker/drivers/opencode.js';
import { type FakeCase, fakeSuite, HANG_PROMPT, runFake } from './harness.js';

const none = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
const cases: FakeCase[] = [
  {
    name: 'success with edits (cost and tokens summed over two steps)',
    prompt: 'Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    // steps: 1200 + 8000 read + 2100 write, then 300 + 10100 read; output 90, then 150 + 20 reasoning
    usage: { inputTokens: 21700, cachedInputTokens: 18100, outputTokens: 260, costUsd: 0.0123 + 0.0061 },
    changed: true,
  },
  {
    name: 'a prompt that begins with "-" (it stays the prompt)',
    prompt: '--help Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    // steps: 1200 + 8000 read + 2100 write, then 300 + 10100 read; output 90, then 150 + 20 reasoning
    usage: { inputTokens: 21700, cachedInputTokens: 18100, outputTokens: 260, costUsd: 0.0123 + 0.0061 },
    changed: true,
  },
  {
    name: 'success without edits',
    prompt: 'Check things [fake:nochange]',
    errorClass: undefined,
    usage: { inputTokens: 900, cachedInputTokens: 0, outputTokens: 120, costUsd: 0.0045 },
    changed: false,
  },
  {
    name: 'rate limit (APIError 429)',
    prompt: 'x [fake:rate_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'overload (APIError 529)',
    prompt: 'x [fake:overloaded]',
    errorClass: 'overloaded',
    usage: none,
    changed: false,
  },
  {
    name: 'auth failure (APIError 401)',
    prompt: 'x [fake:bad_key]',
    errorClass: 'auth',
    usage: none,
    changed: false,
  },
  {
    name: 'context overflow',
    prompt: 'x [fake:context]',
    errorClass: 'context_overflow',
    usage: none,
    changed: false,
  },
  { name: 'crash (killed)', prompt: 'x [fake:crash]', errorClass: 'crash', usage: none, changed: false },
  {
    name: 'hang (timeout)',
    prompt: HANG_PROMPT,
    errorClass: 'timeout',
    usage: none,
    changed: false,
    hang: true,
  },
];

fakeSuite(
  'OpencodeDriver against the fake opencode CLI',
  new OpencodeDriver(),
  cases,
  { model: 'anthropic/claude-sonnet-4-5' },
  { ANTHROPIC_API_KEY: 'sk-ant-test' },
);

const ollama = {
  id: 'ollama',
  name: 'Ollama',
  baseUrl: 'http://127.0.0.1:11434/v1',
  models: ['qwen3-coder:30b'],
};

describe('OpencodeDriver', () => {
  it('builds the headless command line with XDG dirs in the private home, quiet besides model calls', () => {
    // Arrange
    const home = mkdtempSync(join(tmpdir(), 'opencode-home-'));
    // Act
    const cmd = new OpencodeDriver().command({
      prompt: 'Fix the bug',
      workdir: '/w/repo',
      homeDir: home,
      model: 'openai/gpt-5',
      systemPrompt: 'You are a backend engineer.',
    });
    // Assert
    expect(cmd.args).toEqual([
      'run',
      '--format',
      'json',
      '-m',
      'openai/gpt-5',
      '--auto',
      '--',
      'You are a backend engineer.\n\nFix the bug',
    ]);
    expect(cmd.env).toEqual({
      XDG_CONFIG_HOME: `${home}/.config`,
      XDG_DATA_HOME: `${home}/.local/share`,
      XDG_CACHE_HOME: `${home}/.cache`,
      XDG_STATE_HOME: `${home}/.local/state`,
      OPENCODE_DISABLE_AUTOUPDATE: '1',
      OPENCODE_DISABLE_MODELS_FETCH: '1',
      OPENCODE_DISABLE_SHARE: '1',
      OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
      OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
      OPENCODE_DISABLE_CLAUDE_CODE: '1',
      OPENCODE_CONFIG_CONTENT: JSON.stringify({
        $schema: 'https://opencode.ai/config.json',
        snapshot: false,
        share: 'disabled',
        autoupdate: false,
      }),
    });
    // the plugin package is not installed from npm at start
    expect(JSON.parse(readFileSync(`${home}/.config/opencode/package-lock.json`, 'utf8'))).toMatchObject({
      packages: { '': { dependencies: { '@opencode-ai/plugin': '*' } } },
    });
    expect(cmd.stdin).toBeUndefined();
  });

  it('declares a local OpenAI-compatible server as a provider and selects its model', () => {
    // Arrange
    const driver = new OpencodeDriver({ local: { ...ollama, apiKeyEnv: 'OLLAMA_API_KEY' } });
    // Act
    const homeDir = mkdtempSync(join(tmpdir(), 'opencode-home-'));
    const cmd = driver.command({ prompt: 'p', workdir: '/w/repo', homeDir });
    // Assert
    expect(cmd.args.slice(3, 5)).toEqual(['-m', 'ollama/qwen3-coder:30b']);
    expect(JSON.parse(cmd.env.OPENCODE_CONFIG_CONTENT ?? '')).toMatchObject({
      $schema: 'https://opencode.ai/config.json',
      snapshot: false,
      provider: {
        ollama: {
          npm: '@ai-sdk/openai-compatible',
          name: 'Ollama',
          options: { baseURL: 'http://127.0.0.1:11434/v1', apiKey: '{env:OLLAMA_API_KEY}' },
          models: { 'qwen3-coder:30b': { name: 'qwen3-coder:30b' } },
        },
      },
    });
    expect(driver.credentialEnv).toEqual(['OLLAMA_API_KEY']);
    expect(new OpencodeDriver({ local: ollama }).credentialEnv).toEqual([]);
  });

  it.concurrent('runs a local model through the provider it declares, at no cost', async () => {
    // Act
    const run = await runFake(new OpencodeDriver({ local: ollama }), { prompt: 'Add [fake:edit=A.md]' });
    // Assert
    expect(run.errorClass).toBeUndefined();
    expect(run.changes).toEqual(['?? A.md']);
    expect(run.parsed.usage).toMatchObject({ inputTokens: 21700, outputTokens: 260, costUsd: 0 });
    expect(run.parsed.text).toBe('Updated A.md as asked.');
    expect(run.parsed.sessionId).toMatch(/^ses_/);
  });

  it.concurrent('fails as a crash when the model resolves to no provider', async () => {
    // Act
    const run = await runFake(new OpencodeDriver(), {
      prompt: 'Add [fake:edit=A.md]',
      model: 'ollama/qwen3',
    });
    // Assert
    expect(run.output.exitCode).toBe(1);
    expect(run.errorClass).toBe('crash');
    expect(run.parsed.errorMessage).toMatch(/ProviderModelNotFoundError/);
  });
});
