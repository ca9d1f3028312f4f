import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import {
  cli,
  FAKES,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/**
 * Routing that learns, through the public API and CLI: two registry entries of the fake Claude Code,
 * `flaky` (every answer a 529, overloaded) and `steady`, make the `routed` role's providers, in
 * that order. Exploration is off, so each choice is the best score.
 */
describe('provider "auto", preference and pin on the local platform', () => {
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;
  let remote: string;

  beforeAll(async () => {
    const dir = tempDir();
    remote = makeRemote(dir);
    const home = join(dir, 'home');
    const flaky = join(dir, 'flaky');
    mkdirSync(home, { recursive: true });
    mkdirSync(flaky, { recursive: true });
    copyFileSync(join(FAKES, '..', 'flaky-claude'), join(flaky, 'claude'));
    writeFileSync(join(flaky, 'target'), join(FAKES, 'claude'));
    writeFileSync(join(flaky, 'mode'), 'overloaded\n');
    writeFileSync(
      join(home, 'providers.yaml'),
      `providers:\n  flaky:\n    driver: claude\n    bin: ${join(flaky, 'claude')}\n  steady:\n    driver: claude\n`,
    );
    writeFileSync(
      join(home, 'roles.yaml'),
      'roles:\n  routed:\n    providers: [flaky, steady]\n    maxAttempts: 2\n',
    );
    server = await startServer(
      platformEnv(home, {
        AUTODEV_CONCURRENCY: '3',
        // the flaky wrapper keeps a file beside itself, outside any worktree
        AUTODEV_SANDBOX: 'off',
        // failures count in the figures here, not in the breaker
        AUTODEV_BREAKER_FAILURES: '1000',
        AUTODEV_PROVIDER_RATE: '1000',
        AUTODEV_ROUTING_EXPLORATION: '0',
        AUTODEV_ROUTING_CACHE_SECONDS: '0',
      }),
    );
    const token = (await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env)).stdout.trim();
    env = { ...server.env, AUTODEV_TOKEN: token };
  });

  afterAll(async () => {
    await server?.stop();
  });

  const submit = async (prompt: string, extra: string[]) => {
    const r = await cli(['submit', '--repo', remote, '--role', 'routed', '--prompt', prompt, ...extra], env);
    expect(r.stderr).toBe('');
    return r.stdout.trim();
  };
  const ended = (id: string) =>
    until(
      async () => {
        const t = JSON.parse((await cli(['status', id, '--json'], env)).stdout) as Task;
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
      },
      30_000,
      `task ${id} to end`,
    );
  const ran = (t: Task) => t.attempts.map((a) => [a.provider, a.outcome]);

  it('learns from outcomes: auto moves to the provider that succeeds, pin never fails over', async () => {
    // Act 1: before any outcome, auto takes the role's first provider; then a pinned and a preferred task
    const first = await ended(await submit('First routed task', ['--provider', 'auto']));
    const [pinned, preferred] = await Promise.all([
      submit('Pinned to flaky', ['--provider', 'flaky', '--pin']),
      submit('Prefers flaky', ['--provider', 'flaky']),
    ]);
    // Assert 1: auto's first attempt on flaky (no figures yet), its second routed away from it
    expect(ran(first)).toEqual([
      ['flaky', 'failed'],
      ['steady', 'succeeded'],
    ]);
    expect(first.attempts[0]?.routing).toMatchObject({ choice: 'flaky', explored: false });
    expect(first.attempts[0]?.routing?.reason).toMatch(/no outcomes recorded for this role yet/);
    expect(first.attempts[1]?.routing?.choice).toBe('steady');
    expect(first.attempts[1]?.routing?.reason).toMatch(/; left out after failing this task: flaky$/);
    // ...the pinned task stayed on flaky to the end, the preferred one failed over
    const pin = await ended(pinned);
    expect(pin.status).toBe('failed');
    expect(pin.error?.code).toBe('overloaded');
    expect(ran(pin)).toEqual([
      ['flaky', 'failed'],
      ['flaky', 'failed'],
    ]);
    expect(pin.attempts.every((a) => a.routing === undefined)).toBe(true);
    const pref = await ended(preferred);
    expect(ran(pref)).toEqual([
      ['flaky', 'failed'],
      ['steady', 'succeeded'],
    ]);

    // Act 2: with flaky's failures and steady's successes recorded
    const auto2 = await ended(await submit('Second routed task', ['--provider', 'auto']));
    // Assert 2: straight to steady, with the figures in the reason
    expect(ran(auto2)).toEqual([['steady', 'succeeded']]);
    const routing = auto2.attempts[0]?.routing;
    expect(routing?.reason).toMatch(
      /^best score 0\.\d+: 2\/2 succeeded, median \d+\.\d s, median \$\d\.\d{4}; next flaky 0\.1\d* \(0\/4 succeeded\)$/,
    );
    expect(routing?.scores.steady).toBeGreaterThan(routing?.scores.flaky ?? 1);
    // ...shown by autodev status
    const status = await cli(['status', auto2.id], env);
    expect(status.stdout).toMatch(/attempt 1: steady succeeded\n {4}routed: best score/);

    // Act 3: the figures per role
    const stats = await cli(['providers', '--stats', '--role', 'routed'], env);
    // Assert 3
    expect(stats.code).toBe(0);
    const lines = stats.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^role\s+provider\s+attempts\s+success\s+median time\s+median cost$/);
    expect(lines[1]).toMatch(/^routed\s+flaky\s+4\s+0% of 4\s+-\s+-$/);
    expect(lines[2]).toMatch(/^routed\s+steady\s+3\s+100% of 3\s+\d+\.\d s\s+\$\d\.\d{4}$/);
    // ...of this tenant only
    const globex = (await cli(['token', '--tenant', 'globex', '--role', 'viewer'], server.env)).stdout.trim();
    const other = await cli(['providers', '--stats'], { ...env, AUTODEV_TOKEN: globex });
    expect(other.stdout).toMatch(/^no attempts since \d{4}-\d{2}-\d{2}\n$/);
    const json = JSON.parse((await cli(['providers', '--stats', '--json'], env)).stdout);
    expect(json.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          provider: 'steady',
          role: 'routed',
          attempts: 3,
          succeeded: 3,
          successRate: 1,
        }),
      ]),
    );
  });

  it('refuses pin with provider "auto" (400 naming pin), and pin without a provider', async () => {
    const post = (body: unknown) =>
      fetch(`${server.env.AUTODEV_URL}/v1/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.AUTODEV_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const auto = await post({ repo: remote, prompt: 'x', provider: 'auto', pin: true });
    expect(auto.status).toBe(400);
    expect(await auto.json()).toMatchObject({
      error: { code: 'validation_failed', details: [{ field: 'pin', message: 'not with provider "auto"' }] },
    });
    const none = await post({ repo: remote, prompt: 'x', pin: true });
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ error: { details: [{ field: 'pin' }] } });
    const bad = await post({ repo: remote, prompt: 'x', provider: 'claude', pin: 'yes' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { details: [{ field: 'pin' }] } });
  });
});
