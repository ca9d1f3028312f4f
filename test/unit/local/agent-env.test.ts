import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loadLocalConfig } from '../../../lib/local/config.js';
import { tempDir } from '../../support/local-platform.js';

describe('only its own key: what each provider’s CLI (task agent or reviewer) is given', () => {
  const home = tempDir('autodev-agent-env-');
  mkdirSync(home, { recursive: true });
  writeFileSync(
    join(home, 'secrets.env'),
    'GEMINI_API_KEY=gemini-from-secrets-file\nGITHUB_TOKEN=ghp_forge\n',
  );
  const config = loadLocalConfig({
    AUTODEV_HOME: home,
    PATH: '/usr/bin:/bin',
    ANTHROPIC_API_KEY: 'sk-ant-server-key',
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    OPENAI_API_KEY: 'sk-openai-server-key',
    CURSOR_API_KEY: 'cursor-server-key',
    AUTODEV_GITHUB_WEBHOOK_SECRET: 'webhook-secret-value',
  });

  it('the environment every agent shares holds no provider variable and no secret', () => {
    expect(Object.keys(config.agentEnv).sort()).toEqual(['CI', 'PATH', 'TERM']);
  });

  it.each([
    ['claude', { ANTHROPIC_API_KEY: 'sk-ant-server-key', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' }],
    ['codex', { OPENAI_API_KEY: 'sk-openai-server-key' }],
    ['gemini', { GEMINI_API_KEY: 'gemini-from-secrets-file' }],
    ['cursor', { CURSOR_API_KEY: 'cursor-server-key' }],
  ])('%s gets its own credentials and settings only', (name, own) => {
    expect(config.providers[name]?.env).toEqual(own);
  });

  it('the platform’s secret values are known by name, for the scan and the redaction', () => {
    expect(config.secretValues).toMatchObject({
      ANTHROPIC_API_KEY: 'sk-ant-server-key',
      OPENAI_API_KEY: 'sk-openai-server-key',
      GEMINI_API_KEY: 'gemini-from-secrets-file',
      GITHUB_TOKEN: 'ghp_forge',
      AUTODEV_GITHUB_WEBHOOK_SECRET: 'webhook-secret-value',
    });
    expect(config.secretValues.ANTHROPIC_BASE_URL).toBeUndefined();
    expect(config.secretValues.PATH).toBeUndefined();
  });
});
