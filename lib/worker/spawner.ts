import { type ChildProcess, spawn } from 'node:child_process';

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

/**
 * Runs one command to its end. Self-contained (it is given `spawn` and refers to nothing outside
 * itself): the spawner process runs this same function from its source text.
 */
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

/** The spawner process: runs each request it is sent, answers with its outcome, ends with the server. */
const SPAWNER_SOURCE = `'use strict';
const { spawn } = require('node:child_process');
const runCommand = ${runCommand.toString()};
process.on('message', (m) => runCommand(spawn, m.req, (out) => process.send({ id: m.id, out })));
process.on('disconnect', () => process.exit(0));
`;

/**
 * Starting a process from a large one is slow: the fork copies the parent's page tables, and
 * libuv's spawn holds the event loop until the child has exec'd. Measured here, a 130 MiB process
 * spends about 12 ms of its event loop on each `git`, a fresh node process about 2.5 ms. So the
 * server's short commands are started by a small node process of its own (the spawner), which it
 * talks to over an IPC channel; the server's event loop only sends and receives messages.
 *
 * The spawner gets no environment of its own (each request carries its whole environment) and ends
 * when the server does (its channel closes). Should it die, the commands it was running fail and the
 * next one starts a new spawner; if it cannot start at all, commands are run in this process.
 */
class Spawner {
  private child?: ChildProcess;
  private readonly pending = new Map<number, { req: CommandRequest; resolve: (o: CommandOutcome) => void }>();
  private nextId = 0;
  private broken = false;

  run(req: CommandRequest): Promise<CommandOutcome> {
    return new Promise((resolve) => {
      const child = this.broken ? undefined : this.ensure();
      if (!child) return runCommand(spawn, req, resolve);
      const id = ++this.nextId;
      this.pending.set(id, { req, resolve });
      child.channel?.ref();
      try {
        child.send({ id, req }, (err) => {
          if (err)
            this.settle(id, { code: null, stdout: '', stderr: '', failure: `spawner: ${err.message}` });
        });
      } catch (err) {
        this.settle(id, {
          code: null,
          stdout: '',
          stderr: '',
          failure: `spawner: ${(err as Error).message}`,
        });
      }
    });
  }

  private ensure(): ChildProcess | undefined {
    if (this.child) return this.child;
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ['-e', SPAWNER_SOURCE], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
    } catch {
      this.broken = true;
      return undefined;
    }
    child.on('message', (m: { id: number; out: CommandOutcome }) => this.settle(m.id, m.out));
    child.on('error', () => this.lost(child));
    child.on('exit', () => this.lost(child));
    // the server may end while the spawner idles
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  private settle(id: number, outcome: CommandOutcome): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    entry.resolve(outcome);
    if (this.pending.size === 0) this.child?.channel?.unref();
  }

  /**
   * The spawner is gone. One that never started is not tried again, and what was sent to it runs
   * here; what a spawner that ran was running is lost with it (its commands fail).
   */
  private lost(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    const neverStarted = child.pid === undefined;
    if (neverStarted) this.broken = true;
    for (const [id, { req }] of [...this.pending]) {
      if (neverStarted) {
        const entry = this.pending.get(id);
        this.pending.delete(id);
        if (entry) runCommand(spawn, req, entry.resolve);
      } else this.settle(id, { code: null, stdout: '', stderr: '', failure: 'the spawner process ended' });
    }
  }
}

const spawner = new Spawner();

/** Runs a short command to its end through the spawner process (see Spawner). */
export function runShortCommand(req: CommandRequest): Promise<CommandOutcome> {
  return spawner.run(req);
}
