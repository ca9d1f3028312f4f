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

const PROVIDERS = ['claude', 'codex', 'gemini', 'cursor', 'opencode', 'aider'] as const;

describe('every provider through the local platform (fake CLIs on PATH)', () => {
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(
      platformEnv(join(dir, 'home'), {
        AUTODEV_CONCURRENCY: '6',
        CODEX_API_KEY: 'sk-test-codex',
        GEMINI_API_KEY: 'test-gemini-key',
        CURSOR_API_KEY: 'test-cursor-key',
        OPENAI_API_KEY: 'sk-test-openai',
      }),
    );
    const token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
    env = { ...server.env, AUTODEV_TOKEN: token };
  });

  afterAll(async () => {
    await server?.stop();
  });

  it.concurrent.each(PROVIDERS)(
    '%s: the task pushes a branch with the edit and records usage',
    async (provider) => {
      const r = await cli(
        [
          'submit',
          '--repo',
          remote,
          '--prompt',
          `Edit via ${provider} [fake:edit=${provider}.md]`,
          '--provider',
          provider,
          '--wait',
          '--json',
        ],
        env,
      );
      const task = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'))) as Task;
      expect(task.error).toBeUndefined();
      expect(task.status).toBe('succeeded');
      expect(task.provider).toBe(provider);
      expect(task.attempts).toHaveLength(1);
      // CLIs without a system-prompt flag get the role's preamble at the head of the prompt
      expect(gitIn(remote, ['show', `${task.commit}:${provider}.md`])).toMatch(
        /^Change made by the agent for: /,
      );
      expect(gitIn(remote, ['log', '-1', '--format=%B', task.commit as string])).toContain(
        `Provider: ${provider}`,
      );
      expect(task.usage.inputTokens).toBeGreaterThan(0);
      expect(task.usage.outputTokens).toBeGreaterThan(0);
      expect(task.usage.costUsd).toBeGreaterThan(0);
    },
  );

  it('fails a task whose Gemini CLI stopped a loop itself (exit 0, its loop warning) as loop_detected, nothing pushed', async () => {
    // Act
    const r = await cli(
      [
        'submit',
        '--repo',
        remote,
        '--prompt',
        'Keep editing [fake:loop]',
        '--provider',
        'gemini',
        '--wait',
        '--json',
      ],
      env,
    );
    const task = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'))) as Task;
    // Assert
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('loop_detected');
    expect(task.error?.message).toContain('Loop detected, stopping execution');
    expect(task.attempts).toHaveLength(1);
    expect(task.commit).toBeUndefined();
    expect(task.usage.inputTokens).toBe(6100);
  });

  it('lists every provider with its version, credentials and breaker', async () => {
    const r = await cli(['providers'], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^provider\s+version\s+credentials\s+breaker\s+success\s+binary$/);
    expect(lines.find((l) => l.startsWith('claude'))).toMatch(
      /^claude\s+2\.1\.3 \(Claude Code\)\s+present\s+closed\s+/,
    );
    expect(lines.find((l) => l.startsWith('codex'))).toMatch(
      /^codex\s+codex-cli 0\.169\.0\s+present\s+closed/,
    );
    expect(lines).toHaveLength(PROVIDERS.length + 1);
  });

  it('doctor checks the machine and names what is missing', async () => {
    const withServer = await cli(['doctor'], env);
    expect(withServer.stdout).toMatch(/ok {4}Node\.js/);
    expect(withServer.stdout).toMatch(/ok {4}server at http/);
    expect(withServer.stdout).toMatch(/ok {4}claude 2\.1\.3/);
    expect(withServer.code).toBe(0);
    const alone = await cli(['doctor'], { ...env, AUTODEV_URL: 'http://127.0.0.1:9', CURSOR_API_KEY: '' });
    expect(alone.stdout).toMatch(/warn {2}no server at http:\/\/127\.0\.0\.1:9/);
    expect(alone.stdout).toMatch(/warn {2}cursor: no credentials\n {8}Set one of CURSOR_API_KEY/);
  });
});
