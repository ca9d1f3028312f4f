import { writeFileSync } from 'node:fs';
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
  until,
} from '../support/local-platform.js';

describe('the provider registry (providers.yaml): a local model behind Claude Code', () => {
  let dir: string;
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir);
    const home = join(dir, 'home');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(home, { recursive: true });
    writeFileSync(
      join(home, 'providers.yaml'),
      [
        'providers:',
        '  local-claude:',
        '    driver: claude',
        '    model: qwen3-coder',
        '    env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:11434", ANTHROPIC_AUTH_TOKEN: ollama }',
        '    price: { input: 0, output: 0 }',
        '    maxConcurrent: 1',
        '',
      ].join('\n'),
    );
    server = await startServer(
      platformEnv(home, { AUTODEV_CONCURRENCY: '4', AUTODEV_PROVIDER_RATE: '1000' }),
    );
    const token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
    env = { ...server.env, AUTODEV_TOKEN: token };
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs the entry with its model, endpoint and price, one attempt at a time', async () => {
    // Arrange
    // each run records what it was given in its own worktree (the sandbox lets it write nowhere else)
    const seen = 'seen.jsonl';
    const submit = async (n: number) =>
      (
        await cli(
          [
            'submit',
            '--repo',
            remote,
            '--provider',
            'local-claude',
            '--prompt',
            `Local ${n} [fake:sleep=1200] [fake:env=${seen}]`,
          ],
          env,
        )
      ).stdout.trim();
    // Act: two tasks at once on a provider that takes one at a time
    const ids = await Promise.all([submit(1), submit(2)]);
    const tasks = await until(async () => {
      const all = await Promise.all(
        ids.map(async (id) => JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task),
      );
      return all.every((t) => t.status === 'succeeded') ? all : undefined;
    }, 30_000);
    // Assert: the CLI got the entry's model and endpoint; the local model costs nothing
    const runs = tasks.map((t) => JSON.parse(gitIn(remote, ['show', `${t.commit}:${seen}`])));
    expect(runs).toEqual([
      { model: 'qwen3-coder', ANTHROPIC_BASE_URL: 'http://127.0.0.1:11434', ANTHROPIC_AUTH_TOKEN: 'set' },
      { model: 'qwen3-coder', ANTHROPIC_BASE_URL: 'http://127.0.0.1:11434', ANTHROPIC_AUTH_TOKEN: 'set' },
    ]);
    for (const t of tasks) {
      expect(t.provider).toBe('local-claude');
      expect(t.usage.costUsd).toBe(0);
      expect(t.usage.inputTokens).toBeGreaterThan(0);
    }
    // ...and the two attempts did not overlap
    const [a, b] = tasks
      .map((t) => t.attempts.at(-1) as NonNullable<Task['attempts'][number]>)
      .sort((x, y) => x.startedAt.localeCompare(y.startedAt));
    expect(Date.parse(b?.startedAt as string)).toBeGreaterThanOrEqual(Date.parse(a?.endedAt as string));
    const providers = await cli(['providers'], env);
    expect(providers.stdout).toMatch(
      /^local-claude\s+2\.1\.3 \(Claude Code\)\s+present\s+closed\s+100% of 2/m,
    );
  });

  it('refuses a registry entry with an unknown driver, naming it', async () => {
    const home = join(dir, 'bad-home');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'providers.yaml'), 'providers:\n  mystery:\n    driver: hal9000\n');
    const r = await cli(['serve'], platformEnv(home));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/providers\.yaml: providers\.mystery: no driver "hal9000"/);
  });
});
