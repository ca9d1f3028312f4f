import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve, sep } from 'node:path';

import { BRIDGE_MOUNT, PERL, PERL_RELAY_SOURCE, RELAY_SOURCE } from './sandbox-net.js';
import { runShortCommand } from './spawner.js';

/** Where Debian puts bubblewrap and util-linux's setpriv. */
export const BWRAP = ['/usr/bin/bwrap', '/bin/bwrap'].find((p) => existsSync(p));
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** The unprivileged user agents run as when the server runs as root (`nobody` on Debian). */
export const DEFAULT_AGENT_USER = { uid: 65534, gid: 65534 } as const;

export interface AgentUser {
  uid: number;
  gid: number;
}

/**
 * How agent and gate processes are contained:
 * - `bwrap`: a bubblewrap sandbox (own mount, PID, IPC and UTS namespaces; the system read-only;
 *   the worktree, a private HOME and /tmp read-write; nothing else), as `user` when set;
 * - `uid`: no namespaces, only another user (`user`) in a fresh environment (the AWS worker
 *   where bubblewrap cannot run);
 * - `off`: as the server, unconfined (AUTODEV_SANDBOX=off);
 * - `unavailable`: agents must not run (`reason` says why).
 */
export type Sandbox =
  | {
      mode: 'bwrap';
      bwrap: string;
      user?: AgentUser;
      hidden: string[];
      readOnly: string[];
      /**
       * Full access (a role's setting, enabled by an admin): the machine's network, whatever the
       * run's gateway. Without it, a run with a gateway has no network but the gateway.
       */
      fullAccess?: boolean;
    }
  | { mode: 'uid'; user: AgentUser }
  | { mode: 'off' }
  | { mode: 'unavailable'; reason: string };

/** The paths of one sandboxed run. */
export interface SandboxRun {
  /** The worktree: read-write, the working directory. */
  workdir: string;
  /** The private HOME: read-write. */
  home: string;
  /** Mounted at /tmp (TMPDIR): read-write, inside the attempt's own folder. */
  tmp: string;
  /** Shown read-only besides the system: the attempt's git dir, the mirror's objects. */
  readOnly: string[];
  /**
   * The port of the attempt's model gateway on the loopback. With bubblewrap (and no full access)
   * the run then gets its own network namespace in which only that port answers (sandbox-net.ts).
   * Absent: the machine's network (the CLI talks to its provider itself).
   */
  gatewayPort?: number;
  /** The folder of the Unix socket that leads to the gateway (openGatewayBridge), set when the run starts. */
  gatewayBridge?: string;
}

/** Whether the run gets a network namespace of its own, reaching only the model gateway. */
export function isolatesNetwork(s: Sandbox, r: SandboxRun): boolean {
  return s.mode === 'bwrap' && !s.fullAccess && r.gatewayPort !== undefined;
}

export interface SandboxSetting {
  /**
   * `on`: bubblewrap (or, with `allowUidOnly`, a user switch where bubblewrap fails); `uid`: the
   * user switch only (the AWS worker); `off`: unconfined.
   */
  setting: 'on' | 'uid' | 'off';
  /** Used when the server runs as root. */
  user?: AgentUser;
  /** Never visible inside (AUTODEV_HOME, the workspaces and mirrors). */
  hidden?: string[];
  /** Shown read-only in every sandbox (e.g. where the provider CLIs are installed). */
  readOnly?: string[];
  /** Where bubblewrap fails, run agents as `user` without namespaces (the AWS worker). */
  allowUidOnly?: boolean;
  /** The bubblewrap binary (default: Debian's /usr/bin/bwrap). */
  bwrap?: string;
}

const isRoot = () => process.getuid?.() === 0;

/** Decides how agents run on this machine and checks it by starting `/bin/true` that way. */
export async function resolveSandbox(s: SandboxSetting): Promise<Sandbox> {
  if (s.setting === 'off') return { mode: 'off' };
  const user = isRoot() ? (s.user ?? DEFAULT_AGENT_USER) : undefined;
  const bwrap = s.bwrap ?? BWRAP;
  let reason =
    s.setting === 'uid'
      ? 'no bubblewrap asked for'
      : `bubblewrap is not installed${s.bwrap ? ` at ${s.bwrap}` : ' (no /usr/bin/bwrap)'}`;
  if (bwrap && existsSync(bwrap) && s.setting === 'on') {
    if (user && !SETPRIV) reason = 'setpriv (util-linux) is not installed';
    else {
      const sandbox: Sandbox = {
        mode: 'bwrap',
        bwrap,
        user,
        hidden: (s.hidden ?? []).map((p) => safeRealpath(p) ?? resolve(p)),
        readOnly: s.readOnly ?? [],
      };
      const probe = await probeSandbox(sandbox);
      if (probe.ok) return sandbox;
      reason = `bubblewrap failed its start-up check: ${probe.error}`;
    }
  }
  if ((s.allowUidOnly || s.setting === 'uid') && user) {
    const sandbox: Sandbox = { mode: 'uid', user };
    const probe = await probeSandbox(sandbox);
    if (probe.ok) return sandbox;
    reason += `; running as uid ${user.uid} failed too: ${probe.error}`;
  } else if (s.setting === 'uid') reason = 'running agents as another user needs the server to run as root';
  return { mode: 'unavailable', reason };
}

/** One line for start-up output and `doctor`. */
export function describeSandbox(s: Sandbox): string {
  const as = (u?: AgentUser) => (u ? ` as uid ${u.uid}:${u.gid}` : ' as the server user');
  switch (s.mode) {
    case 'bwrap':
      return `agents and gates run in a bubblewrap sandbox${as(s.user)}`;
    case 'uid':
      return `agents and gates run${as(s.user)} in a fresh environment (no bubblewrap)`;
    case 'off':
      return 'agents and gates run UNCONFINED, as the server (AUTODEV_SANDBOX=off)';
    case 'unavailable':
      return `agents will not run: ${s.reason}. Install bubblewrap (apt-get install bubblewrap) or set AUTODEV_SANDBOX=off to run them unconfined`;
  }
}

/** Starts `/bin/true` in the sandbox in a scratch folder: ok, or what went wrong. */
export async function probeSandbox(s: Sandbox): Promise<{ ok: true } | { ok: false; error: string }> {
  if (s.mode === 'off') return { ok: true };
  if (s.mode === 'unavailable') return { ok: false, error: s.reason };
  const scratch = mkdtempSync(join(tmpdir(), 'autodev-probe-'));
  const r: SandboxRun = {
    workdir: join(scratch, 'work'),
    home: join(scratch, 'home'),
    tmp: join(scratch, 'tmp'),
    readOnly: [],
  };
  try {
    for (const d of [r.workdir, r.home, r.tmp]) mkdirSync(d);
    await handOver(s, r);
    const cmd = sandboxCommand(s, r, '/bin/sh', ['-c', 'test -w . && test -w "$HOME" && test -w /tmp'], {
      PATH: '/usr/bin:/bin',
    });
    const out = await new Promise<{ code: number | null; err: string }>((done) => {
      const child = spawn(cmd.file, cmd.args, {
        cwd: r.workdir,
        env: cmd.env,
        uid: cmd.uid,
        gid: cmd.gid,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (c) => {
        err += c;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        done({ code: -1, err: e.message });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        done({ code, err });
      });
    });
    return out.code === 0 ? { ok: true } : { ok: false, error: out.err.trim() || `exit code ${out.code}` };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Makes the run's folders the agent user's before a sandboxed process starts: the worktree's
 * content, HOME and /tmp become its own; the worktree's top folder and its `.git` file stay the
 * server's (sticky and world-writable, so that the agent can add files there but never replace
 * `.git`, and the server's git still trusts the folder afterwards). HOME gets a git configuration
 * that lets git read the server-owned repository. Without a user switch only the folders are made.
 */
export async function handOver(s: Sandbox, r: SandboxRun): Promise<void> {
  mkdirSync(r.home, { recursive: true });
  mkdirSync(r.tmp, { recursive: true });
  const user = s.mode === 'bwrap' || s.mode === 'uid' ? s.user : undefined;
  const gitconfig = join(r.home, '.gitconfig');
  if (s.mode !== 'off' && !existsSync(gitconfig)) {
    // the repository (its git dir) belongs to the server: git refuses it to other users without this
    writeFileSync(gitconfig, '[safe]\n\tdirectory = *\n');
  }
  if (!user) return;
  const owner = `${user.uid}:${user.gid}`;
  // HOME may hold what the server wrote for the CLI (its settings); /tmp only what the agent made and
  // the empty folders bubblewrap makes there for the run's mount points, which stay root's
  const entries = readdirSync(r.workdir)
    .filter((n) => n !== '.git')
    .map((n) => join(r.workdir, n))
    .concat(r.home);
  // one process for all (many entries: in chunks, below the argument list limit)
  for (let i = 0; i < entries.length; i += 500) {
    const out = await runShortCommand({
      file: 'chown',
      args: ['-R', '-h', owner, '--', ...entries.slice(i, i + 500)],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      timeoutMs: 300_000,
      maxOutput: 1024 * 1024,
    });
    if (out.code !== 0 || out.failure)
      throw new Error(`chown failed: ${out.failure ?? (out.stderr.trim() || `exit ${out.code}`)}`);
  }
  chownSync(r.tmp, user.uid, user.gid);
  chmodSync(r.workdir, 0o1777);
  if (s.mode === 'uid') {
    // no mount namespace: the user reaches its folders through the real path
    for (const d of [r.workdir, r.home, r.tmp]) allowTraverse(d);
  }
}

/** Adds search (x, never read) permission for others on every folder above `path`. */
function allowTraverse(path: string): void {
  for (let d = dirname(path); d !== dirname(d); d = dirname(d)) {
    const mode = statSync(d).mode;
    if ((mode & 0o001) === 0) chmodSync(d, (mode & 0o7777) | 0o001);
  }
}

export interface SandboxCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  /**
   * The descriptor on which bubblewrap reports the sandbox's own pid (`{"child-pid": N}`): the
   * caller opens it as a pipe. The sandbox is its own session, outside the leader's process group,
   * and it outlives a leader killed before it set its parent-death signal, so it is killed by pid.
   */
  infoFd?: number;
}

/**
 * The command that runs `file args` in the sandbox, with the environment it gets. With
 * `infoFd`, bubblewrap reports the sandbox's pid on that descriptor, which the caller opens.
 */
export function sandboxCommand(
  s: Sandbox,
  r: SandboxRun,
  file: string,
  args: string[],
  env: Record<string, string>,
  opts: { infoFd?: number } = {},
): SandboxCommand {
  switch (s.mode) {
    case 'off':
      return { file, args, env };
    case 'unavailable':
      throw new Error(`agents cannot run: ${s.reason}`);
    case 'uid':
      return { file, args, env: { ...env, HOME: r.home, TMPDIR: r.tmp }, uid: s.user.uid, gid: s.user.gid };
    case 'bwrap': {
      const isolated = isolatesNetwork(s, r) && r.gatewayBridge !== undefined;
      const agent = isolated
        ? [...relayCommand(), String(r.gatewayPort), `${BRIDGE_MOUNT}/s`, file, ...args]
        : [file, ...args];
      const inner = s.user
        ? [
            SETPRIV as string,
            `--reuid=${s.user.uid}`,
            `--regid=${s.user.gid}`,
            '--clear-groups',
            '--inh-caps=-all',
            '--bounding-set=-all',
            '--no-new-privs',
            '--',
            ...agent,
          ]
        : agent;
      const network = isolated
        ? // the agent user passes through /run (bwrap would make it 0700)
          [
            '--unshare-net',
            '--perms',
            '0755',
            '--dir',
            '/run',
            '--bind',
            r.gatewayBridge as string,
            BRIDGE_MOUNT,
          ]
        : [];
      return {
        file: s.bwrap,
        args: [
          ...(opts.infoFd === undefined ? [] : ['--info-fd', String(opts.infoFd)]),
          ...bwrapArgs(s, r, file, env.PATH ?? ''),
          ...network,
          '--',
          ...inner,
        ],
        infoFd: opts.infoFd,
        env: { ...env, HOME: r.home, TMPDIR: '/tmp' },
      };
    }
  }
}

/** The relay before its arguments: Perl when the system has it (it starts at once), else node. */
function relayCommand(): string[] {
  return PERL ? [PERL, '-e', PERL_RELAY_SOURCE] : [process.execPath, '-e', RELAY_SOURCE];
}

/** System folders shown read-only (or recreated as the symlinks they are). */
const SYSTEM = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

function bwrapArgs(
  s: Extract<Sandbox, { mode: 'bwrap' }>,
  r: SandboxRun,
  file: string,
  path: string,
): string[] {
  const a = ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts'];
  a.push('--unshare-cgroup-try', '--hostname', 'autodev-sandbox');
  // as root, bwrap mounts as root and setpriv drops to the agent user; otherwise a user namespace
  if (!s.user) a.push('--unshare-user');
  const shown: string[] = [];
  for (const p of SYSTEM) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(p), p);
    else if (st.isDirectory()) {
      a.push('--ro-bind', p, p);
      shown.push(p);
    }
  }
  // bwrap makes the folders above a mount point 0700: made here first, searchable, as the agent
  // user must pass through them (those inside a shown system folder exist already)
  const made = new Set<string>();
  const masked: string[] = [];
  const parentsOf = (p: string) =>
    ancestors(p)
      .reverse()
      .filter((d) => d !== '/tmp' && (!under(d, shown) || under(d, masked)) && !made.has(d))
      .flatMap((d) => {
        made.add(d);
        return ['--perms', '0755', '--dir', d];
      });
  // /etc/resolv.conf may point into /run (systemd-resolved)
  const resolvConf = safeRealpath('/etc/resolv.conf');
  const extra = [
    ...(resolvConf && !under(resolvConf, shown) ? [resolvConf] : []),
    ...s.readOnly,
    ...installRoots(file, s.hidden),
    ...pathDirs(path, s.hidden),
  ];
  const real = extra.map(safeRealpath).filter((p): p is string => p !== undefined);
  const ro = uniqueTopmost(real.filter((p) => !under(p, shown) && !under(p, s.hidden)));
  // the private /tmp first: what is shown from the machine's /tmp is mounted inside it
  a.push('--bind', r.tmp, '/tmp');
  for (const p of ro) a.push(...parentsOf(p), '--ro-bind-try', p, p);
  shown.push(...ro);
  a.push('--proc', '/proc', '--dev', '/dev');
  // AUTODEV_HOME and the like, where a read-only folder above them would show them
  for (const h of s.hidden) {
    if (!under(h, shown) || !isDir(h)) continue;
    a.push('--tmpfs', h);
    masked.push(h);
  }
  for (const p of uniqueTopmost(r.readOnly)) a.push(...parentsOf(p), '--ro-bind', p, p);
  for (const p of [r.workdir, r.home]) a.push(...parentsOf(p), '--bind', p, p);
  a.push('--chdir', r.workdir);
  return a;
}

/** The folders above `p`, nearest first, without `/`. */
function ancestors(p: string): string[] {
  const out: string[] = [];
  for (let d = dirname(p); dirname(d) !== d; d = dirname(d)) out.push(d);
  return out;
}

/** The folders of the agent's PATH (its tools), from the environment it is given. */
function pathDirs(path: string, hidden: string[]): string[] {
  return path.split(delimiter).filter((d) => isAbsolute(d) && !under(d, hidden) && isDir(d));
}

/**
 * Where a CLI is installed: its folder, and for a script inside `node_modules` the folder holding
 * that `node_modules` (its dependencies and platform binaries live beside it).
 */
export function installRoots(bin: string, hidden: string[] = []): string[] {
  if (!isAbsolute(bin)) return [];
  const roots = [dirname(bin)];
  const real = safeRealpath(bin);
  if (real) {
    const parts = real.split(sep);
    const nm = parts.lastIndexOf('node_modules');
    roots.push(nm > 0 ? parts.slice(0, nm + 1).join(sep) : dirname(real));
  }
  // the node that runs a script CLI, when it is not a system one
  const node = safeRealpath(process.execPath);
  if (node) roots.push(dirname(dirname(node)));
  return roots.filter((p) => !under(p, hidden));
}

/** Whether `p` is one of `roots` or inside one. */
function under(p: string, roots: readonly string[]): boolean {
  return roots.some((root) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep));
}

/** The paths without those inside another of them, parents first. */
function uniqueTopmost(paths: string[]): string[] {
  const sorted = [...new Set(paths.map((p) => resolve(p)))].sort((x, y) => x.length - y.length);
  const out: string[] = [];
  for (const p of sorted) if (!under(p, out)) out.push(p);
  return out;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function safeRealpath(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}
