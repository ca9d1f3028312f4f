import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAgentProcess } from '../../lib/worker/agent-process.js';
import { resolveSandbox, type Sandbox, type SandboxRun } from '../../lib/worker/sandbox.js';

// not under /tmp: the sandbox has a /tmp of its own
const scratch = mkdtempSync('/var/tmp/autodev-sandbox-net-');
chmodSync(scratch, 0o755);

/** An HTTP server on the host's loopback that answers `name`. */
async function listen(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(`${name}\n`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port };
}

function newRun(name: string, gatewayPort?: number): SandboxRun {
  const base = join(scratch, name);
  const r = { workdir: join(base, 'work'), home: join(base, 'home'), tmp: join(base, 'tmp'), readOnly: [] };
  for (const d of [r.workdir, r.home, r.tmp]) mkdirSync(d, { recursive: true });
  return { ...r, gatewayPort };
}

async function run(policy: Sandbox, r: SandboxRun, script: string) {
  const out = await runAgentProcess({
    bin: '/bin/sh',
    args: ['-c', script],
    cwd: r.workdir,
    env: { PATH: '/usr/bin:/bin' },
    limits: { timeoutMs: 20_000 },
    sandbox: { policy, run: r },
  });
  return { code: out.exitCode, signal: out.signal, out: `${out.stdout}${out.stderr}`.trim() };
}

describe('the network of a sandboxed run', () => {
  let gateway: { server: Server; port: number };
  let elsewhere: { server: Server; port: number };
  let sandbox: Sandbox;
  const probe = (gw: number, other: number) =>
    `curl -s -m 5 http://127.0.0.1:${gw}/ || echo no-gateway; curl -s -m 5 http://127.0.0.1:${other}/ || echo no-network; exit 3`;

  beforeAll(async () => {
    gateway = await listen('gateway');
    elsewhere = await listen('elsewhere');
    sandbox = await resolveSandbox({ setting: 'on' });
    expect(sandbox.mode).toBe('bwrap');
  });
  afterAll(() => {
    gateway.server.close();
    elsewhere.server.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('reaches the model gateway and nothing else when its CLI goes through the gateway', async () => {
    const r = await run(sandbox, newRun('isolated', gateway.port), probe(gateway.port, elsewhere.port));
    expect(r.out.split('\n')).toEqual(['gateway', 'no-network']);
    expect(r.code).toBe(3);
  });

  it('has the machine’s network with full access', async () => {
    const full = { ...sandbox, fullAccess: true } as Sandbox;
    const r = await run(full, newRun('full', gateway.port), probe(gateway.port, elsewhere.port));
    expect(r.out.split('\n')).toEqual(['gateway', 'elsewhere']);
    expect(r.code).toBe(3);
  });

  it('has the machine’s network when no gateway fronts its CLI', async () => {
    const r = await run(sandbox, newRun('direct'), probe(gateway.port, elsewhere.port));
    expect(r.out.split('\n')).toEqual(['gateway', 'elsewhere']);
  });

  it('passes large bodies both ways and several connections at once through the relay', async () => {
    // the gateway echoes the size of what it was sent, after a megabyte of its own
    const echo = createServer((req, res) => {
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
      });
      req.on('end', () => {
        res.write('x'.repeat(1024 * 1024));
        res.end(`\n${size}\n`);
      });
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const port = (echo.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}/`;
    // two uploads at once (3 MB and 5 bytes), then a download of the megabyte
    const script = `for n in 3000000 5; do (head -c $n /dev/zero | curl -s -m 10 --data-binary @- ${url} | tail -n 1) & done; wait; curl -s -m 10 ${url} | wc -c`;
    try {
      const r = await run(sandbox, newRun('bodies', port), script);
      const lines = r.out.split('\n');
      expect(lines.slice(0, 2).sort()).toEqual(['3000000', '5']);
      expect(lines[2]).toBe(String(1024 * 1024 + 3));
      expect(r.code).toBe(0);
    } finally {
      echo.close();
    }
  });

  it('ends as its command ends when isolated: killed by a signal', async () => {
    const r = await run(sandbox, newRun('signal', gateway.port), 'kill -TERM $$');
    expect(r.signal ?? r.code).not.toBe(0);
    expect(r.code === 143 || r.signal === 'SIGTERM').toBe(true);
  });
});
