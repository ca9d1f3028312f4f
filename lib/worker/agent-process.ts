import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ProcessOutput } from '../core/ports.js';
import {
  handOver,
  isolatesNetwork,
  type Sandbox,
  type SandboxCommand,
  type SandboxRun,
  sandboxCommand,
} from './sandbox.js';
import { type GatewayBridge, openGatewayBridge } from './sandbox-net.js';

export interface ProcessLimits {
  timeoutMs: number;
  /** Seconds of CPU time (RLIMIT_CPU). */
  cpuSeconds?: number;
  /** Bytes of data segment / heap (RLIMIT_DATA). */
  memoryBytes?: number;
  /** Time between SIGTERM and SIGKILL of the process group. */
  killGraceMs?: number;
}

export interface AgentProcessOptions {
  bin: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  stdin?: string;
  limits: ProcessLimits;
  signal?: AbortSignal;
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  onStart?: (pid: number) => void;
  /** Stop keeping stdout beyond this many bytes (the parse needs the tail). */
  maxOutputBytes?: number;
  /** Run it contained (see sandbox.ts); `cwd` must then be `run.workdir`. Absent: unconfined. */
  sandbox?: { policy: Sandbox; run: SandboxRun };
}

/** Finds an executable on PATH (or checks a path), as the shell would. */
export function resolveBinary(bin: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = bin.includes('/')
    ? [bin]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p));

/** Whether CPU and memory limits can be applied to agent processes on this machine. */
export const limitsSupported = process.platform === 'linux' && PRLIMIT !== undefined;

/**
 * Runs one agent CLI in its own process group with stdin closed (or fed and closed), CPU and memory
 * rlimits (Linux, via prlimit), and a wall-clock timeout that kills the whole group. In a sandbox,
 * the group's leader is bubblewrap: killing it takes down the sandbox's whole PID namespace.
 */
export async function runAgentProcess(opts: AgentProcessOptions): Promise<ProcessOutput> {
  let cmd: SandboxCommand = { file: opts.bin, args: opts.args, env: opts.env };
  let bridge: GatewayBridge | undefined;
  if (opts.sandbox) {
    const { policy, run } = opts.sandbox;
    await handOver(policy, run);
    // no network but the model gateway: through a socket the server forwards (sandbox-net.ts)
    if (isolatesNetwork(policy, run)) bridge = await openGatewayBridge(run.gatewayPort as number);
    // bubblewrap reports the sandbox's pid on fd 3 (see spawnLimited)
    cmd = sandboxCommand(policy, { ...run, gatewayBridge: bridge?.dir }, opts.bin, opts.args, opts.env, {
      infoFd: 3,
    });
  }
  try {
    return await spawnLimited(opts, cmd);
  } finally {
    bridge?.close();
  }
}

function spawnLimited(opts: AgentProcessOptions, cmd: SandboxCommand): Promise<ProcessOutput> {
  const { limits } = opts;
  let { file, args } = cmd;
  if (limitsSupported && (limits.cpuSeconds || limits.memoryBytes)) {
    const rl: string[] = [];
    if (limits.cpuSeconds) rl.push(`--cpu=${Math.ceil(limits.cpuSeconds)}`);
    if (limits.memoryBytes) rl.push(`--data=${Math.floor(limits.memoryBytes)}`);
    args = [...rl, '--', file, ...args];
    file = PRLIMIT as string;
  }
  const maxOut = opts.maxOutputBytes ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: cmd.env,
      uid: cmd.uid,
      gid: cmd.gid,
      detached: true, // own process group, so that the whole tree can be killed
      stdio: cmd.infoFd === 3 ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let stopping: NodeJS.Signals | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    // the sandbox's own pid (its own session): a group kill of the leader does not reach it
    let sandboxPid: number | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      for (const pid of [child.pid, sandboxPid]) {
        if (pid === undefined) continue;
        try {
          process.kill(-pid, sig);
        } catch {
          // already gone, or not yet a group leader
          try {
            process.kill(pid, sig);
          } catch {
            // already gone
          }
        }
      }
    };
    if (cmd.infoFd !== undefined) {
      readSandboxPid(child.stdio[cmd.infoFd] as Readable | null, (pid) => {
        sandboxPid = pid;
        // stopped before the sandbox was known: it is stopped now
        if (stopping) killGroup(stopping);
      });
    }
    const stop = () => {
      stopping ??= 'SIGTERM';
      killGroup('SIGTERM');
      killTimer ??= setTimeout(() => {
        stopping = 'SIGKILL';
        killGroup('SIGKILL');
      }, opts.limits.killGraceMs ?? 5000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, limits.timeoutMs);
    const onAbort = () => stop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) stop();

    const lineSplitter = (stream: 'stdout' | 'stderr') => {
      let pending = '';
      return (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        if (stream === 'stdout') {
          stdout += text;
          if (stdout.length > maxOut) stdout = stdout.slice(stdout.length - maxOut);
        } else {
          stderr += text;
          if (stderr.length > maxOut) stderr = stderr.slice(stderr.length - maxOut);
        }
        if (!opts.onLine) return;
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) opts.onLine(stream, l);
      };
    };
    child.stdout.on('data', lineSplitter('stdout'));
    child.stderr.on('data', lineSplitter('stderr'));
    child.stdin.on('error', () => {}); // the CLI may exit before reading stdin
    child.stdin.end(opts.stdin ?? '');
    child.on('spawn', () => {
      if (child.pid !== undefined) opts.onStart?.(child.pid);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // the leader is gone: nothing it started may live on (or hold the pipes open)
    child.on('exit', () => killGroup('SIGKILL'));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ stdout, stderr, exitCode: code, signal, timedOut });
    });
  });
}

/** Reads bubblewrap's `--info-fd` report (`{"child-pid": N}`) and hands over the pid. */
function readSandboxPid(stream: Readable | null, onPid: (pid: number) => void): void {
  if (!stream) return;
  let text = '';
  let found = false;
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => {
    text += c;
    const m = /"child-pid"\s*:\s*(\d+)/.exec(text);
    // read to its end (bubblewrap closes it), never closed early: a write to a closed pipe kills it
    if (m && !found) {
      found = true;
      onPid(Number(m[1]));
    }
  });
  stream.on('error', () => {});
}
