import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

describe('a server without a working sandbox', () => {
  const servers: RunningServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it.each([
    ['bubblewrap is missing', '/nonexistent/bwrap', 'bubblewrap is not installed at /nonexistent/bwrap'],
    ['bubblewrap fails its start-up check', '/bin/false', 'bubblewrap failed its start-up check'],
  ])(
    'when %s: says so at start and in doctor, and fails tasks without blaming the provider',
    async (_, bwrap, reason) => {
      // Arrange
      const dir = tempDir('autodev-nosandbox-');
      const remote = makeRemote(dir);
      const env = platformEnv(join(dir, 'home'), { AUTODEV_BWRAP: bwrap, AUTODEV_BREAKER_FAILURES: '1' });
      const server = await startServer(env);
      servers.push(server);
      const token = (
        await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)
      ).stdout.trim();
      const client = { ...server.env, AUTODEV_TOKEN: token };
      // Act
      const runs = await Promise.all(
        [1, 2].map(() =>
          cli(
            ['submit', '--repo', remote, '--prompt', 'Notes [fake:edit=NOTES.md]', '--wait', '--json'],
            client,
          ),
        ),
      );
      const doctor = await cli(['doctor'], client);
      const providers = await cli(['providers', '--json'], client);
      // Assert
      expect(server.output()).toContain(`sandbox:     agents will not run: ${reason}`);
      for (const r of runs) {
        const task = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('{\n  "id"'))) as Task;
        expect(task.status).toBe('failed');
        expect(task.error?.code).toBe('sandbox_unavailable');
        expect(task.error?.message).toContain('AUTODEV_SANDBOX=off');
        expect(task.attempts.map((a) => a.errorClass)).toEqual([undefined]);
      }
      expect(doctor.code).toBe(1);
      expect(doctor.stdout).toContain('FAIL  no sandbox for agents');
      const claude = (JSON.parse(providers.stdout) as { name: string; breaker: string }[]).find(
        (p) => p.name === 'claude',
      );
      expect(claude?.breaker).toBe('closed');
    },
  );
});
