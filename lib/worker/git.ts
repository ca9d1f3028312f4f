import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { runShortCommand } from './spawner.js';

export class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(
      `git ${args[0] ?? ''} failed: ${stderr.trim().split('\n').slice(-3).join(' | ') || `exit ${exitCode}`}`,
    );
    this.name = 'GitError';
  }
}

/**
 * The whole environment of the server's own git commands: nothing of the process's environment is
 * passed but what git needs to reach a remote (PATH, proxies, CA files, the operator's ssh command
 * and agent). No system or global configuration or attributes, no prompts, no replace refs or grafts.
 */
const PASSED_ENV =
  /^(PATH|SSH_AUTH_SOCK|GIT_SSH_COMMAND|GIT_SSH|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy|ALL_PROXY|all_proxy|SSL_CERT_FILE|SSL_CERT_DIR|GIT_SSL_CAINFO|TZ)$/;

const FIXED_ENV: Record<string, string> = {
  LC_ALL: 'C',
  HOME: '/nonexistent',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_SYSTEM: '/dev/null',
  GIT_ATTR_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
  GIT_NO_REPLACE_OBJECTS: '1',
  GIT_GRAFT_FILE: '/dev/null',
  // `ext::` and other protocols git marks "user" are refused even when configured
  GIT_PROTOCOL_FROM_USER: '0',
  GIT_OPTIONAL_LOCKS: '0',
};

/** The environment a git command gets: the fixed part, what PASSED_ENV lets through, then `extra`. */
export function gitEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && PASSED_ENV.test(k)) env[k] = v;
  return { ...env, ...FIXED_ENV, ...extra };
}

/**
 * Every configuration that makes git run a program, set on the command line, which wins over any
 * configuration file. Programs named through attributes (filter, diff and merge drivers) and other
 * per-name settings (`url.<base>.insteadOf`, `credential.<url>.helper`, proxies, includes) cannot be listed:
 * they come only from the repository's configuration, which the workspace keeps as the server
 * wrote it (see `sealGitDir` in workspace.ts).
 */
export const SAFE_CONFIG: readonly string[] = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.untrackedCache=false',
  'core.pager=cat',
  'core.editor=:',
  'sequence.editor=:',
  'core.askPass=',
  'core.sshCommand=ssh',
  'core.alternateRefsCommand=',
  'core.attributesFile=/dev/null',
  'core.excludesFile=/dev/null',
  'credential.helper=',
  'diff.external=',
  'diff.noprefix=false',
  'gpg.program=false',
  'gpg.ssh.program=false',
  'gpg.x509.program=false',
  'commit.gpgSign=false',
  'tag.gpgSign=false',
  'rebase.gpgSign=false',
  // `ext::` runs a command; other remote helpers are "user" protocols, refused by GIT_PROTOCOL_FROM_USER=0
  'protocol.ext.allow=never',
  'protocol.fd.allow=never',
  'protocol.file.allow=always',
  // a redirect could take a fetch or push from the address the policy checked to one it never saw
  'http.followRedirects=false',
  'remote.origin.uploadpack=git-upload-pack',
  'remote.origin.receivepack=git-receive-pack',
  'submodule.recurse=false',
  'fetch.recurseSubmodules=false',
  'push.recurseSubmodules=no',
  'gc.auto=0',
  'maintenance.auto=false',
  'fetch.writeCommitGraph=false',
  'rebase.autoStash=false',
  'advice.detachedHead=false',
];

const SAFE_ARGS = SAFE_CONFIG.flatMap((c) => ['-c', c]);

export interface GitOptions {
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
  /**
   * The repository's git dir as the server recorded it: git is told it (`--git-dir`) instead of
   * finding it from `cwd`, e.g. through a worktree's `.git` file, which the agent can rewrite to
   * point elsewhere.
   */
  gitDir?: string;
  /** With `gitDir`, for commands on a worktree (`--work-tree`). */
  workTree?: string;
  /**
   * A worktree the agent worked in, as the server recorded it before: the command runs in it with
   * its recorded git dir, after its configuration was put back as the server left it.
   */
  worktree?: TrustedWorktree;
  /** For commands that reach an https remote: given to git through a pipe (see FD3_HELPER). */
  credential?: GitCredential;
}

/** A worktree as the server made it: its folder, its git dir, and that git dir's seal. */
export interface TrustedWorktree {
  dir: string;
  gitDir: string;
  seal: GitDirSeal;
}

/** Options for a command in a worktree the server recorded (its git dir, not `.git`), or a plain folder. */
export function inTree(where: string | TrustedWorktree): GitOptions {
  return typeof where === 'string' ? { cwd: where } : { worktree: where };
}

/** A user name and password (a token) for an https remote, given to git per command. */
export interface GitCredential {
  username: string;
  password: string;
}

/**
 * The credential helper: prints the user name and the password git asks for, reading the password
 * from file descriptor 3, a pipe the server writes it to. The token is never in an environment
 * variable, a command line, a file or the repository's configuration.
 */
const FD3_HELPER = '!f() { test "$1" = get || exit 0; cat <&3; }; f';

export function git(args: string[], given: GitOptions = {}): Promise<string> {
  const t = given.worktree;
  if (t) restoreGitDir(t.seal);
  const opts = t ? { ...given, cwd: t.dir, gitDir: t.gitDir, workTree: t.dir } : given;
  const repo = [
    ...(opts.gitDir ? [`--git-dir=${opts.gitDir}`] : []),
    ...(opts.workTree ? [`--work-tree=${opts.workTree}`] : []),
  ];
  const credential = opts.credential ? ['-c', `credential.helper=${FD3_HELPER}`] : [];
  return runShortCommand({
    file: 'git',
    args: [...SAFE_ARGS, ...credential, ...repo, ...args],
    cwd: opts.cwd,
    env: gitEnv(opts.env),
    input: opts.input,
    fd3: opts.credential && `username=${opts.credential.username}\npassword=${opts.credential.password}\n`,
    timeoutMs: opts.timeoutMs ?? 120_000,
    maxOutput: MAX_OUTPUT,
  }).then(({ code, stdout, stderr, failure }) => {
    if (code === 0 && !failure) return stdout;
    throw new GitError(args, stderr || failure || `exit ${code}`, code);
  });
}

const MAX_OUTPUT = 64 * 1024 * 1024;

/** The configuration files git reads from a git dir and its common dir, as the server left them. */
export type GitDirSeal = ReadonlyMap<string, Buffer | null>;

const SEALED_FILES = ['config', 'config.worktree', 'commondir', join('info', 'attributes')];

/** Takes the seal of a git dir (a worktree's admin dir, with the repository it belongs to). */
export function sealGitDir(gitDir: string): GitDirSeal {
  const dirs = [gitDir];
  const commondirFile = join(gitDir, 'commondir');
  if (existsSync(commondirFile)) {
    const common = readFileSync(commondirFile, 'utf8').trim();
    dirs.push(isAbsolute(common) ? common : resolve(gitDir, common));
  }
  const seal = new Map<string, Buffer | null>();
  for (const dir of dirs)
    for (const f of SEALED_FILES)
      seal.set(join(dir, f), existsSync(join(dir, f)) ? readFileSync(join(dir, f)) : null);
  return seal;
}

/** Puts back every sealed file that changed (written, replaced by a link or a folder, removed). */
export function restoreGitDir(seal: GitDirSeal): string[] {
  const restored: string[] = [];
  for (const [file, content] of seal) {
    let now: Buffer | null = null;
    try {
      now = lstatSync(file).isFile() ? readFileSync(file) : Buffer.from('\0not a file');
    } catch {
      now = null;
    }
    if (now === null ? content === null : content !== null && now.equals(content)) continue;
    if (content === null) rmSync(file, { recursive: true, force: true });
    else writeAtomic(file, content);
    restored.push(file);
  }
  return restored;
}

/** Replaces a file at once (git on other worktrees of the mirror may read it meanwhile). */
export function writeAtomic(file: string, content: string | Buffer): void {
  const tmp = `${file}.autodev-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(tmp, content);
  try {
    if (!lstatSync(file).isFile()) rmSync(file, { recursive: true, force: true });
  } catch {
    // not there
  }
  renameSync(tmp, file);
}
