import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
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
 * The relay in Perl (perl-base, in every Debian system): the same contract as RELAY_SOURCE, run as
 * `perl -e PERL_RELAY_SOURCE PORT SOCKET FILE ARGS...`. It loads no module (Socket, POSIX and
 * IO::Socket take 15-30 ms each to load; with none, Perl starts in about 3 ms), so Linux's constants
 * are written out. One select loop copies both ways on each connection (a half-close is passed on);
 * FILE's end (its SIGCHLD, through a pipe, so a wake-up is never lost) ends it with FILE's exit code or signal.
 */
export const PERL_RELAY_SOURCE = `
use strict; use warnings;
my ($port, $socket, $file, @args) = @ARGV;
# Linux's values (no module is loaded: Socket and POSIX take tens of milliseconds to start)
my ($AF_UNIX, $AF_INET, $SOCK_STREAM, $SOL_SOCKET, $SO_REUSEADDR, $WNOHANG) = (1, 2, 1, 1, 2, 1);
socket(my $server, $AF_INET, $SOCK_STREAM, 0) or die "relay: socket: $!\n";
setsockopt($server, $SOL_SOCKET, $SO_REUSEADDR, pack('i', 1));
bind($server, pack('S n C4 x8', $AF_INET, $port, 127, 0, 0, 1)) && listen($server, 64)
  or die "relay: cannot listen on 127.0.0.1:$port: $!\n";
# FILE's end wakes the loop through a pipe written by the SIGCHLD handler (no lost wake-up)
pipe(my $wake_r, my $wake_w) or die "relay: pipe: $!\n";
$SIG{CHLD} = sub { syswrite($wake_w, 'x') };
my $child = fork() // die "relay: fork: $!\n";
if ($child == 0) {
  close $server; close $wake_r; close $wake_w;
  { exec { $file } $file, @args; }
  print STDERR "$file: $!\n"; exit 127;
}
$SIG{PIPE} = 'IGNORE';
$SIG{$_} = do { my $s = $_; sub { kill $s, $child } } for qw(TERM INT HUP);
my (%peer, %reading, %handle);
my $addr_un = pack('S Z108', $AF_UNIX, $socket);
sub drop { my ($h) = @_; delete $reading{fileno $h}; delete $handle{fileno $h}; delete $peer{fileno $h}; close $h }
while (waitpid($child, $WNOHANG) != $child) {
  my $rin = '';
  vec($rin, fileno($_), 1) = 1 for $server, $wake_r, map { $handle{$_} } keys %reading;
  next if select(my $rout = $rin, undef, undef, 0.5) <= 0;
  if (vec($rout, fileno $wake_r, 1)) { sysread($wake_r, my $x, 64) }
  if (vec($rout, fileno $server, 1)) {
    if (accept(my $c, $server)) {
      my $u;
      if (socket($u, $AF_UNIX, $SOCK_STREAM, 0) && connect($u, $addr_un)) {
        $peer{fileno $c} = $u; $peer{fileno $u} = $c;
        $handle{fileno $c} = $c; $handle{fileno $u} = $u;
        $reading{fileno $c} = $reading{fileno $u} = 1;
      } else { close $c }
    }
  }
  for my $fd (keys %reading) {
    next unless vec($rout, $fd, 1);
    my $h = $handle{$fd}; my $to = $peer{$fd} or next;
    my $n = sysread($h, my $buf, 65536);
    if (!$n) {
      delete $reading{$fd}; shutdown($to, 1);
      if (!$reading{fileno $to}) { drop($h); drop($to) }
      next;
    }
    for (my $off = 0; $off < $n;) { my $w = syswrite($to, $buf, $n - $off, $off) // last; $off += $w }
  }
}
my $status = $?;
if ($status & 127) { my $sig = $status & 127; $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP); kill $sig, $$; sleep 1 }
exit($status >> 8);
`;

/** Perl for the relay, when the system has it (else the relay runs on the server's node). */
export const PERL = ['/usr/bin/perl', '/bin/perl'].find((p) => existsSync(p));

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
