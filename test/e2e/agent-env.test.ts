import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

/** Only its own key: an agent's environment holds the credentials of the provider that runs it and no other secret. */
describe('an agent’s environment holds its own provider’s credentials only', () => {
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        ANTHROPIC_BASE_URL: 'http://127.0.0.1:9/anthropic',
        CODEX_API_KEY: 'sk-test-codex-key',
        OPENAI_API_KEY: 'sk-test-openai-key',
        GEMINI_API_KEY: 'test-gemini-key',
        CURSOR_API_KEY: 'test-cursor-key',
        GITHUB_TOKEN: 'ghp_test_forge_token',
        GIT_TOKEN: 'test-git-token',
        AUTODEV_GITHUB_WEBHOOK_SECRET: 'test-webhook-secret',
      }),
    );
    const token = await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env);
    env = { ...server.env, AUTODEV_TOKEN: token.stdout.trim() };
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('Claude Code sees ANTHROPIC_* and nothing of codex, gemini, cursor, the forge, git or the webhook', async () => {
    // Act
    const r = await cli(
      [
        'submit',
        '--repo',
        remote,
        '--prompt',
        'List your environment [fake:envnames=ENV.txt]',
        '--provider',
        'claude',
        '--wait',
        '--json',
      ],
      env,
    );
    const task = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'))) as Task;
    // Assert
    expect(task.status).toBe('succeeded');
    const names = gitIn(remote, ['show', `${task.branch}:ENV.txt`])
      .trim()
      .split('\n');
    expect(names).toEqual(
      expect.arrayContaining(['ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'HOME', 'PATH']),
    );
    for (const other of [
      'CODEX_API_KEY',
      'OPENAI_API_KEY',
      'GEMINI_API_KEY',
      'CURSOR_API_KEY',
      'GITHUB_TOKEN',
      'GIT_TOKEN',
      'AUTODEV_GITHUB_WEBHOOK_SECRET',
      'AUTODEV_HOME',
    ])
      expect(names).not.toContain(other);
  }, 60_000);
});
