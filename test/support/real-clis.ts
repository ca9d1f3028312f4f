/**
 * For the tests that run the real provider CLIs (`npm run test:real-cli`): where
 * `npm run real-clis:install` put them, a recording HTTP(S) proxy that sees any request a CLI sends
 * past the loopback, and a reader of the environments of running processes.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './local-platform.js';

/** The folder `scripts/install-real-clis.sh` links each installed CLI into. */
export const REAL_CLI_BIN = join(ROOT, '.cache/real-clis/bin');

/** The installed binary of `name`, or an error saying how to install it. */
export function realCli(name: string): string {
  const bin = join(REAL_CLI_BIN, name);
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run real-clis:install first`);
  return bin;
}

export interface RecordingProxy {
  url: string;
  /** Every destination asked for: `CONNECT host:port` targets and plain-HTTP URLs. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 that forwards nothing: it records what it was asked for and refuses it.
 * Given to the agents as HTTP(S)_PROXY (with NO_PROXY for the loopback), it catches whatever a CLI
 * would send anywhere but the gateway.
 */
export async function startRecordingProxy(): Promise<RecordingProxy> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(403);
    res.end();
  });
  server.on('connect', (req, socket) => {
    seen.push(`CONNECT ${req.url}`);
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface ProcessEnv {
  pid: number;
  argv: string[];
  env: string[];
}

/**
 * The command lines and environments of the running processes whose executable or first arguments
 * lie under `dir` (the CLI itself, not the sandbox launching it: bwrap and setpriv name the CLI
 * further down their arguments).
 */
export function processesUnder(dir: string): ProcessEnv[] {
  const out: ProcessEnv[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let exe = '';
      try {
        exe = readlinkSync(`/proc/${name}/exe`);
      } catch {
        // a process of another user without ptrace access: its argv says enough
      }
      const head = [exe, ...argv.slice(0, 2)];
      if (!head.some((a) => a.startsWith(dir))) continue;
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), argv, env });
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Polls `processesUnder(dir)` every 50 ms until stopped; returns every process seen, by pid. */
export function watchProcesses(dir: string): { stop(): ProcessEnv[] } {
  const seen = new Map<number, ProcessEnv>();
  const tick = () => {
    for (const p of processesUnder(dir)) if (!seen.has(p.pid)) seen.set(p.pid, p);
  };
  const timer = setInterval(tick, 50);
  return {
    stop() {
      clearInterval(timer);
      return [...seen.values()];
    },
  };
}

/** Files under `dir` (recursively, symlinks not followed) whose content contains `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size < 50_000_000) {
        try {
          if (readFileSync(p).includes(needle)) found.push(p);
        } catch {
          // a socket or a file gone meanwhile
        }
      }
    }
  };
  walk(dir);
  return found;
}
