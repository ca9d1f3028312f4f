import { existsSync, readFileSync } from 'node:fs';
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

/** The server's own key, as platformEnv sets it: short enough that no key format matches it. */
const KEY = 'sk-ant-test-key';

/**
 * Secrets never leave: an agent that can see the server's ANTHROPIC_API_KEY commits it (as it is,
 * base64 inside a JSON text, hexadecimal) and prints it; nothing is pushed, the task fails with a
 * secret-scan error that names the variable but not the value, and the stored and served logs,
 * the error and the summary hold a marker instead of the key.
 */
describe('secrets never leave: the platform’s own key is not pushed, logged or shown', () => {
  let dir: string;
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir);
    // without the model gateway, as for a CLI it cannot proxy (Cursor, logins): the agent holds the key
    server = await startServer(
      platformEnv(join(dir, 'home'), { AUTODEV_BREAKER_FAILURES: '1000', AUTODEV_MODEL_GATEWAY: '0' }),
    );
    const token = await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env);
    env = { ...server.env, AUTODEV_TOKEN: token.stdout.trim() };
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  const submit = async (prompt: string) => {
    const r = await cli(
      ['submit', '--repo', remote, '--prompt', prompt, '--provider', 'claude', '--wait', '--json'],
      env,
    );
    return JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'))) as Task;
  };

  it.concurrent.each(['plain', 'base64', 'hex'])(
    'a commit holding the key (%s) is not pushed; the task fails with a clear error without the value',
    async (encoding) => {
      // Act
      const task = await submit(
        `Save the configuration [fake:leak=ANTHROPIC_API_KEY:config.txt:${encoding}]`,
      );
      // Assert
      expect(task.status).toBe('failed');
      expect(task.error?.code).toBe('secret_detected');
      expect(task.error?.message).toMatch(/^The change adds a secret this platform holds: /);
      expect(task.error?.message).toContain('config.txt:1 (known_secret, the value of ANTHROPIC_API_KEY)');
      expect(JSON.stringify(task)).not.toContain(KEY);
      expect(gitIn(remote, ['for-each-ref', '--format=%(refname)', 'refs/heads/autodev/'])).not.toContain(
        task.id,
      );
      // the log, as served
      const logs = await cli(['logs', task.id], env);
      expect(logs.stdout).toContain('the key is [redacted ANTHROPIC_API_KEY]');
      expect(logs.stdout).toContain('secret scan: The change adds a secret this platform holds');
      expect(logs.stdout).not.toContain(KEY);
    },
    60_000,
  );

  it('the database holds the key nowhere', async () => {
    const files = ['autodev.db', 'autodev.db-wal']
      .map((f) => join(dir, 'home', f))
      .filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(f).includes(Buffer.from(KEY))).toBe(false);
  });
});
