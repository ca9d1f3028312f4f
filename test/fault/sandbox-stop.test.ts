import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAgentProcess } from '../../lib/worker/agent-process.js';
import { resolveSandbox, type Sandbox, type SandboxRun } from '../../lib/worker/sandbox.js';

// not under /tmp: the sandbox has a /tmp of its own
const scratch = mkdtempSync('/var/tmp/autodev-sandbox-stop-');
chmodSync(scratch, 0o755);

/** Pids whose command line holds `mark`. */
function processesWith(mark: string): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(mark)) found.push(Number(p));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

async function noneLeft(mark: string, withinMs: number): Promise<number[]> {
  const end = Date.now() + withinMs;
  let left = processesWith(mark);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    left = processesWith(mark);
  }
  return left;
}

describe('an agent stopped while its sandbox starts', () => {
  let sandbox: Sandbox;
  let gateway: Server;
  let port: number;

  beforeAll(async () => {
    sandbox = await resolveSandbox({ setting: 'on' });
    expect(sandbox.mode).toBe('bwrap');
    gateway = createServer((_req, res) => res.end('gateway\n'));
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', () => r()));
    port = (gateway.address() as AddressInfo).port;
  });
  afterAll(() => {
    gateway.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  // A cancel that lands as the agent starts: the leader (bubblewrap) is stopped before the
  // sandbox it clones has set its parent-death signal. The sandbox is its own session, so the
  // leader's group kill misses it; it must still end, not run on as an orphan.
  it('leaves no process of the sandbox behind, however early the stop lands', async () => {
    const survivors: number[] = [];
    for (let i = 0; i < 12; i++) {
      const mark = `autodev-stop-${process.pid}-${i}`;
      const base = join(scratch, String(i));
      const run: SandboxRun = {
        workdir: join(base, 'work'),
        home: join(base, 'home'),
        tmp: join(base, 'tmp'),
        readOnly: [],
        gatewayPort: port,
      };
      for (const d of [run.workdir, run.home, run.tmp]) mkdirSync(d, { recursive: true });
      const abort = new AbortController();
      const out = await runAgentProcess({
        bin: '/bin/sh',
        args: ['-c', `sleep 120; : ${mark}`, mark],
        cwd: run.workdir,
        env: { PATH: '/usr/bin:/bin' },
        limits: { timeoutMs: 60_000, killGraceMs: 300 },
        sandbox: { policy: sandbox, run },
        signal: abort.signal,
        // stopped at once, at varying points of the sandbox's start
        onStart: () => setTimeout(() => abort.abort(), i % 4),
      });
      expect(out.timedOut).toBe(false);
      survivors.push(...(await noneLeft(mark, 3000)));
    }
    for (const pid of survivors) process.kill(pid, 'SIGKILL');
    expect(survivors).toEqual([]);
  }, 120_000);

  // bubblewrap's report descriptor is the server's: a pid written there would be killed by it
  it("gives the agent no way to write to the descriptor on which bubblewrap reports the sandbox's pid", async () => {
    const base = join(scratch, 'fd');
    const run: SandboxRun = {
      workdir: join(base, 'work'),
      home: join(base, 'home'),
      tmp: join(base, 'tmp'),
      readOnly: [],
      gatewayPort: port,
    };
    for (const d of [run.workdir, run.home, run.tmp]) mkdirSync(d, { recursive: true });
    const out = await runAgentProcess({
      bin: '/bin/sh',
      args: ['-c', 'echo \'{"child-pid": 1}\' >&3 && echo wrote || echo refused'],
      cwd: run.workdir,
      env: { PATH: '/usr/bin:/bin' },
      limits: { timeoutMs: 20_000 },
      sandbox: { policy: sandbox, run },
    });
    expect(out.stdout.trim()).toBe('refused');
  });
});
