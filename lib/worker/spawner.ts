import { type ChildProcess, spawn } from 'node:child_process';
import { PERL } from './sandbox-net.js';

/** A short command whose whole output is wanted: git, chown. */
export interface CommandRequest {
  file: string;
  args: string[];
  cwd?: string;
  /** The whole environment (nothing of the server's is added). */
  env: Record<string, string>;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Written to a pipe on file descriptor 3, then closed (git's credential, see git.ts). */
  fd3?: string;
  timeoutMs: number;
  /** stdout and stderr together, in bytes: past it the process is killed. */
  maxOutput: number;
}

export interface CommandOutcome {
  /** The exit code, null when a signal ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why the command was stopped or could not start (a timeout, too much output, a spawn error). */
  failure?: string;
}

/** Runs one command to its end from this process (without the spawner). */
function runCommand(
  spawnFn: typeof spawn,
  req: CommandRequest,
  done: (outcome: CommandOutcome) => void,
): void {
  const child = spawnFn(req.file, req.args, {
    cwd: req.cwd,
    env: req.env,
    stdio: req.fd3 === undefined ? ['pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe', 'pipe'],
    // its own process group: a stop kills what it started too (git's pack-objects, a shell's children)
    detached: true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let size = 0;
  let failure: string | undefined;
  const stop = (why: string) => {
    if (failure === undefined) failure = why;
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  };
  const timer = setTimeout(() => stop(`timed out after ${req.timeoutMs} ms`), req.timeoutMs);
  const collect = (into: Buffer[]) => (c: Buffer) => {
    size += c.length;
    if (size > req.maxOutput) stop('printed too much');
    else into.push(c);
  };
  child.stdout?.on('data', collect(out));
  child.stderr?.on('data', collect(err));
  child.on('error', (e) => stop(e.message));
  child.on('close', (code) => {
    clearTimeout(timer);
    done({
      code,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      failure,
    });
  });
  const fd3 = child.stdio[3] as NodeJS.WritableStream | null | undefined;
  for (const s of [child.stdin, fd3]) s?.on('error', () => undefined);
  if (req.fd3 !== undefined) fd3?.end(req.fd3);
  child.stdin?.end(req.input ?? '');
}

/**
 * The spawner: a Perl process (a few MiB, so its forks are cheap) reading requests on stdin and
 * answering on stdout, each request and answer a frame:
 * - request: `ID LENGTH\n`, then LENGTH bytes: timeout, max output, cwd, file, argc, args, envc,
 *   env entries, has-fd3, fd3 text, NUL-separated, then the input (the rest);
 * - answer: `ID CODE SIGNAL FAILURE-LENGTH STDOUT-LENGTH STDERR-LENGTH\n`, then those bytes
 *   (CODE -1 when a signal ended the command).
 * Each command runs in a session of its own (killed whole); a select loop reads every command's
 * output; the spawner ends when its stdin closes (the server is gone).
 */
const PERL_SPAWNER_SOURCE = `
use strict; use warnings;
use POSIX ();
$SIG{PIPE} = 'IGNORE';
my (%jobs, %byfh);
my $inbuf = '';
pipe(my $wake_r, my $wake_w) or die "pipe: $!";
for my $fh ($wake_r, $wake_w, \\*STDIN) { my $f = fcntl($fh, 3, 0); fcntl($fh, 4, $f | 2048); }
$SIG{CHLD} = sub { syswrite($wake_w, 'x') };
use Time::HiRes ();
sub now_ms { my ($s, $us) = Time::HiRes::gettimeofday(); $s * 1000 + $us / 1000 }
sub stop_job { my ($j, $why) = @_; $j->{failure} //= $why; kill 'KILL', -$j->{pid}; }
sub start_job {
  my ($id, $payload) = @_;
  my @f = split /\\0/, $payload, -1;
  my ($timeout, $max, $cwd, $file, $argc) = splice(@f, 0, 5);
  my @args = splice(@f, 0, $argc);
  my $envc = shift @f; my @env = splice(@f, 0, $envc);
  my ($hasfd3, $fd3) = splice(@f, 0, 2);
  my $input = join("\\0", @f);
  pipe(my $ir, my $iw); pipe(my $or, my $ow); pipe(my $er, my $ew);
  my ($fr, $fw); pipe($fr, $fw) if $hasfd3;
  my $pid = fork();
  if (!defined $pid) { reply($id, -1, 0, "fork: $!", '', ''); return; }
  if ($pid == 0) {
    POSIX::setsid();
    POSIX::dup2(fileno($ir), 0); POSIX::dup2(fileno($ow), 1); POSIX::dup2(fileno($ew), 2);
    POSIX::dup2(fileno($fr), 3) if $hasfd3;
    $SIG{PIPE} = 'DEFAULT'; $SIG{CHLD} = 'DEFAULT';
    if (length $cwd && !chdir $cwd) { print STDERR "cannot enter $cwd: $!\\n"; POSIX::_exit(127); }
    %ENV = map { my ($k, $v) = split /=/, $_, 2; ($k, $v) } @env;
    { no warnings; exec { $file } $file, @args; }
    print STDERR "cannot run $file: $!\\n"; POSIX::_exit(127);
  }
  close $ir; close $ow; close $ew; close $fr if $hasfd3;
  if ($hasfd3) { syswrite($fw, $fd3); close $fw; }
  syswrite($iw, $input) if length $input; close $iw;
  my $j = { id => $id, pid => $pid, out => '', err => '', open => 2, size => 0, max => $max,
            deadline => now_ms() + $timeout, timeout => $timeout };
  $jobs{$pid} = $j;
  $byfh{fileno $or} = [$j, 'out', $or]; $byfh{fileno $er} = [$j, 'err', $er];
}
sub reply {
  my ($id, $code, $sig, $failure, $out, $err) = @_;
  my $head = join(' ', $id, $code, $sig, length $failure, length $out, length $err) . "\\n";
  my $all = $head . $failure . $out . $err;
  while (length $all) {
    my $n = syswrite(STDOUT, $all);
    if (!defined $n) { next if $!{EAGAIN} || $!{EINTR}; exit 0; }
    substr($all, 0, $n) = '';
  }
}
sub finish {
  my ($j) = @_;
  return unless defined $j->{status} && $j->{open} == 0;
  delete $jobs{$j->{pid}};
  my $st = $j->{status};
  my ($code, $sig) = ($st & 127) ? (-1, $st & 127) : ($st >> 8, 0);
  reply($j->{id}, $code, $sig, $j->{failure} // '', $j->{out}, $j->{err});
}
binmode STDOUT; binmode STDIN;
while (1) {
  my $rin = '';
  vec($rin, fileno(STDIN), 1) = 1; vec($rin, fileno($wake_r), 1) = 1;
  vec($rin, $_, 1) = 1 for keys %byfh;
  my $next;
  for my $j (values %jobs) { $next = $j->{deadline} if !defined $j->{failure} && (!defined $next || $j->{deadline} < $next); }
  my $wait = defined $next ? ($next - now_ms()) / 1000 : undef;
  $wait = 0 if defined $wait && $wait < 0;
  my $n = select(my $rout = $rin, undef, undef, $wait);
  if ($n < 0) { next if $!{EINTR}; die "select: $!"; }
  if ($n > 0 && vec($rout, fileno($wake_r), 1)) { sysread($wake_r, my $x, 512); }
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) { my $j = $jobs{$pid} or next; $j->{status} = $?; finish($j); }
  for my $fd (keys %byfh) {
    next unless $n > 0 && vec($rout, $fd, 1);
    my ($j, $which, $fh) = @{$byfh{$fd}};
    my $got = sysread($fh, my $buf, 65536);
    next if !defined $got && ($!{EAGAIN} || $!{EINTR});
    if (!$got) { close $fh; delete $byfh{$fd}; $j->{open}--; finish($j); next; }
    $j->{size} += $got;
    if ($j->{size} > $j->{max}) { stop_job($j, 'printed too much'); } else { $j->{$which} .= $buf; }
  }
  my $t = now_ms();
  for my $j (values %jobs) { stop_job($j, "timed out after $j->{timeout} ms") if !defined $j->{failure} && $t >= $j->{deadline}; }
  if ($n > 0 && vec($rout, fileno(STDIN), 1)) {
    my $got = sysread(STDIN, $inbuf, 65536, length $inbuf);
    if (defined $got && $got == 0) { exit 0; }
    while ($inbuf =~ /^(\\d+) (\\d+)\\n/) {
      my ($id, $len) = ($1, $2); my $h = length("$id $len\\n");
      last if length($inbuf) < $h + $len;
      my $payload = substr($inbuf, $h, $len); substr($inbuf, 0, $h + $len) = '';
      start_job($id, $payload);
    }
  }
}
`;

/**
 * How long past a command's own time the server waits for its answer before it kills the spawner
 * (failing what it runs; the next command starts a new one).
 */
export const ANSWER_GRACE_MS = 5_000;

/** Input past this size is written from the server's own spawn (a pipe holds 64 KiB). */
const MAX_FRAMED_INPUT = 32 * 1024;

/**
 * Starting a process from a large one is slow: the fork copies the parent's page tables, and
 * libuv's spawn holds the event loop until the child has exec'd. Measured here under load, a
 * 130 MiB node process spends about 12 ms of its event loop on each `git`; a small process forks in
 * well under a millisecond. So the server's short commands are started by a small Perl process of
 * its own (the spawner), which it talks to over pipes: its event loop only writes and reads frames.
 *
 * The spawner gets no environment of its own (each request carries its whole environment) and ends
 * with the server. Should it die, the commands it was running fail and the next one starts a new
 * spawner; without Perl, or for a request a frame cannot carry, commands start from this process.
 */
class Spawner {
  private child?: ChildProcess;
  private readonly pending = new Map<
    number,
    { resolve: (o: CommandOutcome) => void; watchdog: NodeJS.Timeout }
  >();
  private nextId = 0;
  private received: Buffer = Buffer.alloc(0);

  run(req: CommandRequest): Promise<CommandOutcome> {
    return new Promise((resolve) => {
      const frame = PERL ? encodeRequest(++this.nextId, req) : undefined;
      const child = frame && this.ensure();
      if (!frame || !child?.stdin) return runCommand(spawn, req, resolve);
      // the spawner kills a command at its time; no answer well past it means the spawner is stuck
      const watchdog = setTimeout(() => child.kill('SIGKILL'), req.timeoutMs + ANSWER_GRACE_MS);
      this.pending.set(this.nextId, { resolve, watchdog });
      this.setRef(true);
      child.stdin.write(frame);
    });
  }

  private ensure(): ChildProcess | undefined {
    if (this.child) return this.child;
    const child = spawn(PERL as string, ['-e', PERL_SPAWNER_SOURCE], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {},
    });
    child.stdin?.on('error', () => undefined);
    child.stdout?.on('data', (chunk: Buffer) => this.receive(chunk));
    child.on('error', () => this.lost(child));
    child.on('exit', () => this.lost(child));
    this.child = child;
    this.received = Buffer.alloc(0);
    this.setRef(false);
    return child;
  }

  /** Holds the server's event loop open only while a command runs. */
  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    const handles = [c, c.stdin, c.stdout] as ({ ref(): void; unref(): void } | null)[];
    for (const h of handles) {
      if (on) h?.ref();
      else h?.unref();
    }
  }

  private receive(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    for (;;) {
      const nl = this.received.indexOf(10);
      if (nl < 0) return;
      const [id, code, sig, f, o, e] = this.received
        .subarray(0, nl)
        .toString('latin1')
        .split(' ')
        .map(Number);
      const total = nl + 1 + (f as number) + (o as number) + (e as number);
      if (this.received.length < total) return;
      let at = nl + 1;
      const take = (n: number) => {
        const text = this.received.subarray(at, at + n).toString('utf8');
        at += n;
        return text;
      };
      const failure = take(f as number);
      const outcome: CommandOutcome = {
        code: code === -1 ? null : (code as number),
        stdout: take(o as number),
        stderr: take(e as number),
        ...(failure || sig ? { failure: failure || `killed by signal ${sig}` } : {}),
      };
      this.received = this.received.subarray(total);
      this.settle(id as number, outcome);
    }
  }

  private settle(id: number, outcome: CommandOutcome): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.watchdog);
    entry.resolve(outcome);
    if (this.pending.size === 0) this.setRef(false);
  }

  /** The spawner is gone: what it was running fails (a command may have half run); the next starts anew. */
  private lost(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    for (const id of [...this.pending.keys()])
      this.settle(id, { code: null, stdout: '', stderr: '', failure: 'the spawner process ended' });
  }
}

/** A request as a frame, or undefined when a frame cannot carry it (a NUL in a field, a large input). */
function encodeRequest(id: number, req: CommandRequest): Buffer | undefined {
  const input = req.input ?? '';
  if (Buffer.byteLength(input) > MAX_FRAMED_INPUT) return undefined;
  const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`);
  const fields = [
    String(req.timeoutMs),
    String(req.maxOutput),
    req.cwd ?? '',
    req.file,
    String(req.args.length),
    ...req.args,
    String(env.length),
    ...env,
    req.fd3 === undefined ? '0' : '1',
    req.fd3 ?? '',
  ];
  if (fields.some((f) => f.includes('\0'))) return undefined;
  const payload = Buffer.from(`${fields.join('\0')}\0${input}`);
  return Buffer.concat([Buffer.from(`${id} ${payload.length}\n`), payload]);
}

const spawner = new Spawner();

/** Runs a short command to its end through the spawner process (see Spawner). */
export function runShortCommand(req: CommandRequest): Promise<CommandOutcome> {
  return spawner.run(req);
}
