import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { gatewayRoute } from '../../../lib/gateway/attempts.js';
import { ClaudeDriver } from '../../../lib/worker/drivers/claude.js';
import { CodexDriver } from '../../../lib/worker/drivers/codex.js';
import { GeminiDriver } from '../../../lib/worker/drivers/gemini.js';
import { OpencodeDriver } from '../../../lib/worker/drivers/opencode.js';

const gateway = { baseUrl: 'http://127.0.0.1:4000', credential: 'autodev-session' };
const input = () => ({
  prompt: 'p',
  workdir: '/w',
  homeDir: mkdtempSync(join(tmpdir(), 'gw-home-')),
  gateway,
});

describe('drivers pointed at a gateway session', () => {
  it('Claude Code: ANTHROPIC_BASE_URL and the credential as ANTHROPIC_API_KEY; other credentials blanked', () => {
    const env = new ClaudeDriver().command(input()).env;
    expect(env).toMatchObject({
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:4000',
      ANTHROPIC_API_KEY: 'autodev-session',
      ANTHROPIC_AUTH_TOKEN: '',
      CLAUDE_CODE_OAUTH_TOKEN: '',
    });
  });

  it('Codex: the gateway as a provider of its own (HTTP only, key from CODEX_API_KEY); OPENAI_API_KEY blanked', () => {
    const cmd = new CodexDriver().command(input());
    expect(cmd.args.slice(0, 1)).toEqual(['exec']);
    const provider =
      'model_providers.autodev={name="AutoDev model gateway",base_url="http://127.0.0.1:4000",env_key="CODEX_API_KEY",wire_api="responses",supports_websockets=false}';
    expect(cmd.args[cmd.args.indexOf(provider) - 1]).toBe('-c');
    expect(cmd.args[cmd.args.indexOf('model_provider="autodev"') - 1]).toBe('-c');
    expect(cmd.env).toMatchObject({ CODEX_API_KEY: 'autodev-session', OPENAI_API_KEY: '' });
  });

  it('Gemini CLI: base URL, key and user settings selecting API-key auth', () => {
    const i = input();
    const cmd = new GeminiDriver().command(i);
    expect(cmd.env).toMatchObject({
      GOOGLE_GEMINI_BASE_URL: 'http://127.0.0.1:4000',
      GEMINI_API_KEY: 'autodev-session',
      GOOGLE_API_KEY: '',
      GEMINI_CLI_HOME: i.homeDir,
    });
    const settings = JSON.parse(readFileSync(join(i.homeDir, '.gemini/settings.json'), 'utf8'));
    expect(settings).toMatchObject({ security: { auth: { selectedType: 'gemini-api-key' } } });
  });

  it('opencode: the gateway as an OpenAI-compatible provider holding the credential; hosted keys blanked', () => {
    const cmd = new OpencodeDriver().command({ ...input(), model: 'openai/gpt-4.1-mini' });
    expect(cmd.args.slice(3, 5)).toEqual(['-m', 'autodev-gateway/gpt-4.1-mini']);
    expect(JSON.parse(cmd.env.OPENCODE_CONFIG_CONTENT ?? '').provider).toEqual({
      'autodev-gateway': {
        npm: '@ai-sdk/openai-compatible',
        name: 'autodev-gateway',
        options: { baseURL: 'http://127.0.0.1:4000', apiKey: 'autodev-session' },
        models: { 'gpt-4.1-mini': { name: 'gpt-4.1-mini' } },
      },
    });
    expect(cmd.env).toMatchObject({ OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '' });
  });

  it('without a session nothing changes', () => {
    const { gateway: _, ...plain } = input();
    expect(new ClaudeDriver().command(plain).env.ANTHROPIC_API_KEY).toBeUndefined();
    expect(new CodexDriver().command(plain).args.join(' ')).not.toContain('openai_base_url');
  });
});

describe('gatewayRoute', () => {
  const claude = new ClaudeDriver();
  it('routes an API key to the vendor, through a configured base URL when one is set', () => {
    expect(gatewayRoute(claude, { ANTHROPIC_API_KEY: 'k' })).toEqual({
      vendor: 'anthropic',
      upstream: 'https://api.anthropic.com',
      realKey: 'k',
    });
    expect(
      gatewayRoute(claude, { ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: 'http://proxy:8080' })?.upstream,
    ).toBe('http://proxy:8080');
    expect(gatewayRoute(new CodexDriver(), { OPENAI_API_KEY: 'o' })).toMatchObject({
      vendor: 'openai',
      realKey: 'o',
    });
    expect(gatewayRoute(new GeminiDriver(), { GEMINI_API_KEY: 'g' })).toMatchObject({ vendor: 'gemini' });
    expect(
      gatewayRoute(new OpencodeDriver(), { OPENAI_API_KEY: 'o', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }),
    ).toEqual({ vendor: 'openai', upstream: 'http://127.0.0.1:9/v1', realKey: 'o' });
  });

  it('keeps the direct path for other auth, local modes and drivers it does not front', () => {
    expect(gatewayRoute(claude, { ANTHROPIC_API_KEY: 'k', ANTHROPIC_AUTH_TOKEN: 'ollama' })).toBeUndefined();
    expect(gatewayRoute(claude, { CLAUDE_CODE_OAUTH_TOKEN: 't' })).toBeUndefined();
    expect(gatewayRoute(new CodexDriver({ oss: true }), { OPENAI_API_KEY: 'o' })).toBeUndefined();
    expect(
      gatewayRoute(new GeminiDriver(), { GEMINI_API_KEY: 'g', GOOGLE_GENAI_USE_VERTEXAI: 'true' }),
    ).toBeUndefined();
    expect(
      gatewayRoute({ name: 'cursor', credentialEnv: ['CURSOR_API_KEY'] }, { CURSOR_API_KEY: 'c' }),
    ).toBeUndefined();
  });
});
