import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The network of a sandboxed agent whose CLI goes through the model gateway: its own network
 * namespace (nothing but its loopback), and on that loopback, at the gateway's port, a relay to a
 * Unix socket that the server forwards to the gateway. So the agent reaches its model and nothing
 * else: no other host, no other port of this machine. Full access (a role setting an admin
 * enables) gives the machine's network instead.
 */

/** Where the bridge's folder is mounted in the sandbox; the socket inside it is `s`. */
export const BRIDGE_MOUNT = '/run/autodev-gateway';

/**
 * Run in the sandbox by the node that runs the server: `node -e RELAY PORT SOCKET FILE ARGS...`
 * listens on 127.0.0.1:PORT, forwards each connection to SOCKET, runs FILE with ARGS on the same
 * stdio, and ends as FILE ends (its exit code, or the same signal).
 */
export const RELAY_SOURCE = `
const net = require('node:net');
const { spawn } = require('node:child_process');
const [port, socket, file, ...args] = process.argv.slice(1);
const pipe = (a, b) => { a.pipe(b); b.pipe(a); a.on('error', () => b.destroy()); b.on('error', () => a.destroy()); };
const server = net.createServer((c) => pipe(c, net.createConnection(socket)));
server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(file, args, { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => { process.stderr.write(String(e.message) + '\\n'); process.exit(127); });
  child.on('exit', (code, signal) => {
    server.close();
    if (signal) { process.removeAllListeners(signal); process.kill(process.pid, signal); }
    else process.exit(code ?? 1);
  });
});
`;

function pipe(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

export interface GatewayBridge {
  /** The folder holding the socket (mounted at BRIDGE_MOUNT). */
  dir: string;
  close(): void;
}

/** A Unix socket whose connections go to 127.0.0.1:`port` (the attempt's model gateway). */
export async function openGatewayBridge(port: number): Promise<GatewayBridge> {
  // a short path: a Unix socket's path is limited to 107 bytes
  const dir = mkdtempSync(join(tmpdir(), 'autodev-gw-'));
  const path = join(dir, 's');
  const server = createServer((c) => pipe(c, createConnection(port, '127.0.0.1')));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  // the agent's user (nobody) connects; the folder is seen by this one sandbox only
  chmodSync(dir, 0o755);
  chmodSync(path, 0o666);
  return {
    dir,
    close() {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
