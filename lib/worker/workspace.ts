import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { hasConflictMarkers, trainBranchFor, trainTip } from '../core/merge-train.js';
import {
  type GitCredential,
  type GitDirSeal,
  GitError,
  type GitOptions,
  git,
  sealGitDir,
  type TrustedWorktree,
  writeAtomic,
} from './git.js';
import { SCAN_DIFF_ARGS } from './secret-scan.js';

const AGENT_LITTER = '.aider*';

/** The task branch moved on the remote in a way the agent's commit cannot be put on top of. */
export class PushConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PushConflictError';
  }
}

/**
 * The repository or the machine failed, not the agent: the repository is missing or unreachable,
 * access is denied, the disk is full. The task fails with error code `workspace` and the fault
 * never counts against a provider.
 */
export class WorkspaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkspaceError';
  }
}

/** A repository URL as it may be shown: without a user name or password. */
export function displayRepo(repo: string): string {
  try {
    const url = new URL(repo);
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
      return url.toString();
    }
  } catch {
    // a local path or an scp-like address: nothing to hide
  }
  return repo;
}

const MISSING =
  /does not appear to be a git repository|repository .*not found|not found|does not exist|no such file or directory/i;
const DENIED =
  /authentication failed|permission denied|access denied|could not read (username|password)|terminal prompts disabled|\b403\b|\b401\b/i;
const DISK_FULL = /no space left on device|disk quota exceeded|ENOSPC|EDQUOT/i;

/** Says in a sentence what went wrong with the repository, from git's error or the system's. */
export function workspaceFault(repo: string, what: string, err: unknown): WorkspaceError {
  if (err instanceof WorkspaceError) return err;
  const detail = err instanceof GitError ? err.stderr : err instanceof Error ? err.message : String(err);
  const shown = displayRepo(repo);
  // git's message may quote the URL: never with its user name or password
  const last = detail
    .replace(/\/\/[^/@\s'"]*@/g, '//')
    .trim()
    .split('\n')
    .slice(-2)
    .join(' | ');
  if (DISK_FULL.test(detail) || (err as NodeJS.ErrnoException)?.code === 'ENOSPC')
    return new WorkspaceError(`The disk is full: could not ${what} ${shown} (${last}).`);
  if (DENIED.test(detail) || (err as NodeJS.ErrnoException)?.code === 'EACCES')
    return new WorkspaceError(
      `Access to the repository ${shown} was denied: could not ${what} it (${last}).`,
    );
  if (/returned error: 30[1278]\b/.test(detail))
    return new WorkspaceError(
      `The repository ${shown} answered with a redirect, which is not followed: give its final address (${last}).`,
    );
  if (MISSING.test(detail))
    return new WorkspaceError(`The repository ${shown} does not exist or cannot be reached (${last}).`);
  return new WorkspaceError(`Could not ${what} the repository ${shown}: ${last}`);
}

export interface Workspace {
  taskId: string;
  /** The repository as the task names it. */
  repo: string;
  /** The git worktree the agent works in. */
  dir: string;
  /**
   * The attempt's own git dir (`<task dir>/git`; the worktree's `.git` file points at it) as the
   * server made it: the server's git is told it, never reads `.git`, and the agent never writes it.
   */
  gitDir: string;
  /** The git dir's configuration as the server left it, put back before each of its git commands. */
  seal: GitDirSeal;
  /** A private HOME for the agent, outside the worktree. */
  homeDir: string;
  /** Holds the worktree and the home of this attempt. */
  taskDir: string;
  /** The branch on the remote: `<prefix><task id>`. */
  branch: string;
  /** The attempt's own branch in its repository; pushed to `branch`. */
  localBranch: string;
  baseBranch: string;
  /** The commit the change goes onto: the base branch's, or the train's (moved by a rebase onto a newer one). */
  baseCommit: string;
  mirror: string;
  /**
   * Without a forge, the merge train's branch (`<prefix>train/<base>`) and the commit the push
   * expects it at ('' for absent): the push advances it to the task's commit, atomically.
   */
  train?: { branch: string; lease: string };
}

/** The push was refused because the train branch moved since the lease was taken. */
export class TrainMovedError extends Error {
  constructor(readonly tip: { base: string; train?: string }) {
    super('the merge train moved');
    this.name = 'TrainMovedError';
  }
}

/** A rebase onto a newer base, as it ended. */
export type RebaseResult =
  | { ok: true; head: string }
  | { ok: false; conflicts: { path: string; code: string }[] };

export interface CommitResult {
  changed: boolean;
  commit?: string;
  files: string[];
}

/**
 * Everything in the worktree, staged: the files that differ from the base, and the diff of what
 * they add on top of it (the secret scan's input, as `diffForScan` would give it once committed).
 */
export interface StagedChange {
  files: string[];
  diff: string;
  /** The commit the diff is taken against. */
  base: string;
}

export interface WorkspaceOptions {
  /** Where worktrees are made, one folder per task. */
  root: string;
  /** Where bare mirrors of repositories are cached, one per repo URL. */
  mirrors: string;
  authorName: string;
  authorEmail: string;
  branchPrefix: string;
  /**
   * The credential for a repository's https remote (e.g. a token from `GIT_TOKEN`), handed to each
   * git command that reaches the remote through a pipe: never an environment variable or a file.
   */
  credentialFor?: (repo: string) => GitCredential | undefined;
}

/** Credentials from one token for every https remote (`x-access-token` works on GitHub and GitLab). */
export function tokenCredential(
  token: string | undefined,
): ((repo: string) => GitCredential | undefined) | undefined {
  if (!token) return undefined;
  return (repo) => (/^https?:\/\//i.test(repo) ? { username: 'x-access-token', password: token } : undefined);
}

/**
 * Git workspaces from cached mirrors: one bare mirror per repository, fetched before each task,
 * and one worktree per task on branch `<prefix><task id>`. No full clone per task.
 */
export class GitWorkspaces {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: WorkspaceOptions) {
    mkdirSync(opts.root, { recursive: true });
    mkdirSync(opts.mirrors, { recursive: true });
  }

  branchFor(taskId: string): string {
    return `${this.opts.branchPrefix}${taskId}`;
  }

  mirrorPath(repo: string): string {
    return join(this.opts.mirrors, `${createHash('sha256').update(repo).digest('hex').slice(0, 16)}.git`);
  }

  /**
   * Runs `fn` with the mirror locked, within this process (a promise chain) and across processes
   * sharing AUTODEV_HOME (a lock file): git refuses concurrent ref and worktree updates in one repository.
   */
  private withMirror<T>(mirror: string, fn: () => Promise<T>): Promise<T> {
    const locked = async () => {
      const release = await lockfile.lock(mirror, {
        lockfilePath: `${mirror}.lock`,
        realpath: false,
        // a holder refreshes the lock while it lives; one that died (SIGKILL) frees it after `stale`
        stale: 5_000,
        onCompromised: () => undefined,
        retries: { retries: 1000, minTimeout: 5, maxTimeout: 50, factor: 1.3 },
      });
      try {
        return await fn();
      } finally {
        await release().catch(() => undefined);
      }
    };
    const prev = this.locks.get(mirror) ?? Promise.resolve();
    const next = prev.then(locked, locked);
    this.locks.set(
      mirror,
      next.catch(() => undefined),
    );
    return next;
  }

  private async ensureMirror(repo: string): Promise<string> {
    const mirror = await this.fetchMirror(repo);
    // files agents leave behind that are never part of their change (aider's tag cache)
    writeFileSync(join(mirror, 'info', 'exclude'), `${AGENT_LITTER}\n`);
    return mirror;
  }

  private async fetchMirror(repo: string): Promise<string> {
    const mirror = this.mirrorPath(repo);
    try {
      if (!existsSync(join(mirror, 'HEAD'))) throw new Error('no mirror yet');
      // the configuration is the server's: whatever was written into it since is dropped before git reads it
      resetMirrorConfig(mirror, repo);
      await fetchWithRetry(mirror, this.opts.credentialFor?.(repo));
    } catch {
      const tmp = `${mirror}.tmp-${process.pid}-${Date.now()}`;
      try {
        await git(['init', '--quiet', '--bare', tmp]);
        resetMirrorConfig(tmp, repo);
        const credential = this.opts.credentialFor?.(repo);
        await git(['fetch', '--quiet', '--prune', 'origin'], { cwd: tmp, gitDir: tmp, credential });
        await git(['remote', 'set-head', 'origin', '--auto'], { cwd: tmp, gitDir: tmp, credential }).catch(
          () => undefined,
        );
        rmSync(mirror, { recursive: true, force: true });
        renameSync(tmp, mirror);
      } finally {
        // a failed first fetch leaves nothing behind (its configuration holds the URL, credentials and all)
        rmSync(tmp, { recursive: true, force: true });
      }
    }
    return mirror;
  }

  /**
   * Fetches the repo into its mirror, then makes the attempt's own repository: a git dir of its own
   * (`<task dir>/git`, outside the worktree) that borrows the mirror's objects read-only (alternates)
   * and holds only this attempt's branch. Nothing the attempt does writes to the mirror, so one
   * task cannot change what another checks out, and an agent shown the git dir read-only can still
   * run git's read commands.
   */
  async prepare(
    taskId: string,
    repo: string,
    baseBranch?: string,
    opts: { train?: boolean } = {},
  ): Promise<Workspace> {
    return this.prepareOrThrow(taskId, repo, baseBranch, opts).catch((err: unknown) => {
      throw workspaceFault(repo, 'fetch', err);
    });
  }

  private async prepareOrThrow(
    taskId: string,
    repo: string,
    baseBranch: string | undefined,
    opts: { train?: boolean },
  ): Promise<Workspace> {
    const mirror = this.mirrorPath(repo);
    const { base, baseCommit, train } = await this.withMirror(mirror, async () => {
      await this.ensureMirror(repo);
      const base = baseBranch ?? (await defaultBranch(mirror));
      const baseCommit =
        readRefFile(mirror, `refs/remotes/origin/${base}`) ??
        (
          await git(['rev-parse', '--verify', `refs/remotes/origin/${base}^{commit}`], {
            cwd: mirror,
            gitDir: mirror,
          }).catch(() => {
            throw new WorkspaceError(`The base branch "${base}" does not exist in ${displayRepo(repo)}.`);
          })
        ).trim();
      if (!opts.train) return { base, baseCommit, train: undefined };
      // the merge train without a forge: the change starts on top of the tasks that landed before it
      const branch = trainBranchFor(this.opts.branchPrefix, base);
      const inMirror = { cwd: mirror, gitDir: mirror };
      const tip = await this.trainTipIn(inMirror, baseCommit, `refs/remotes/origin/${branch}`, taskId);
      return { base, baseCommit: tip.onto, train: { branch, lease: tip.train ?? '' } };
    });
    // one folder and one local branch per attempt: an attempt that lost its lease but still runs
    // somewhere never shares (or removes) the folder of the attempt that took over
    const nonce = randomBytes(3).toString('hex');
    const taskDir = join(this.opts.root, `${taskId}-${nonce}`);
    const dir = join(taskDir, taskId);
    const homeDir = join(taskDir, 'home');
    const gitDir = join(taskDir, 'git');
    const branch = this.branchFor(taskId);
    const localBranch = `${branch}-${nonce}`;
    // the repository's files as `git init --separate-git-dir` would write them (gitrepository-layout),
    // then one git command checks the base out: as fast as `git worktree add` was
    for (const d of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags', 'info']) {
      mkdirSync(join(gitDir, d), { recursive: true, mode: 0o755 });
    }
    mkdirSync(dir);
    mkdirSync(homeDir);
    writeFileSync(join(gitDir, 'HEAD'), `ref: refs/heads/${localBranch}\n`);
    writeFileSync(
      join(gitDir, 'config'),
      `[core]\n\trepositoryformatversion = 0\n\tbare = false\n[remote "origin"]\n\turl = ${configValue(repo)}\n`,
    );
    writeFileSync(join(gitDir, 'objects', 'info', 'alternates'), `${join(mirror, 'objects')}\n`);
    writeFileSync(join(gitDir, 'info', 'exclude'), `${AGENT_LITTER}\n`);
    writeFileSync(
      join(dir, '.git'),
      `gitdir: ${gitDir}
`,
    );
    // the branch starts at the base; one git command writes the index and the files
    const inRepo = { cwd: dir, gitDir, workTree: dir };
    if (!writeRefFile(gitDir, `refs/heads/${localBranch}`, baseCommit))
      await git(['update-ref', `refs/heads/${localBranch}`, baseCommit], inRepo);
    await git(['read-tree', '--reset', '-u', baseCommit], inRepo);
    // taken before the agent runs: the server puts this configuration back before each of its git commands
    const seal = sealGitDir(gitDir);
    return {
      taskId,
      repo,
      taskDir,
      dir,
      homeDir,
      gitDir,
      seal,
      branch,
      localBranch,
      baseBranch: base,
      baseCommit,
      mirror,
      train,
    };
  }

  /** The train branch's commit in a repository (if any), and the commit a change goes onto. */
  /**
   * The train branch's commit in a repository (if any), and the commit a change goes onto: the train
   * when it carries the base, else the base. When the train's last car is this task's own commit
   * (an attempt again after one that landed), below it: the new attempt replaces its car.
   */
  private async trainTipIn(
    opts: GitOptions,
    base: string,
    trainRev: string,
    taskId: string,
  ): Promise<{ onto: string; train?: string }> {
    const shown = await git(
      ['log', '-1', '--format=%H%x00%P%x00%B', `${trainRev}^{commit}`, '--'],
      opts,
    ).catch(() => '');
    const [train, parents, body] = shown.split('\0');
    if (!train || !/^[0-9a-f]{40,64}$/.test(train)) return { onto: base };
    const hasBase =
      train === base ||
      (await git(['merge-base', '--is-ancestor', base, train], opts)
        .then(() => true)
        .catch(() => false));
    const onto = trainTip(base, train, hasBase);
    const parent = parents?.split(' ')[0];
    if (onto === train && train !== base && parent && body?.includes(`AutoDev-Task: ${taskId}\n`))
      return { onto: parent, train };
    return { onto, train };
  }

  /**
   * Options for the server's git commands on the worktree: the git dir it recorded (never the
   * worktree's `.git` file) with its configuration put back as the server left it, so nothing the
   * agent wrote (hooks, fsmonitor, filter, diff or merge drivers, url rewrites, includes) is read.
   */
  private inTree(ws: Workspace): { worktree: TrustedWorktree } {
    return { worktree: ws };
  }

  /** Files the agent changed, added or removed in the worktree. */
  async changedFiles(ws: Workspace): Promise<string[]> {
    const out = await git(['status', '--porcelain', '--untracked-files=all', '-z'], this.inTree(ws));
    return out
      .split('\0')
      .filter(Boolean)
      .map((l) => l.slice(3));
  }

  /**
   * Stages everything in the worktree and says what differs from the base, in two git commands:
   * the file list and the scan's diff come from one `git diff --raw --patch`.
   */
  stage(ws: Workspace): Promise<StagedChange> {
    return this.stageOrThrow(ws).catch((err: unknown) => {
      throw workspaceFault(ws.repo, 'stage in', err);
    });
  }

  private async stageOrThrow(ws: Workspace): Promise<StagedChange> {
    const base = ws.baseCommit;
    await git(['add', '--all'], this.inTree(ws));
    const out = await git(
      ['diff', '--cached', '--raw', '-z', '--patch', ...SCAN_DIFF_ARGS, base],
      this.inTree(ws),
    );
    return { ...splitRawPatch(out), base };
  }

  /** Commits everything the agent changed, with the AutoDev-Task trailer. */
  commit(ws: Workspace, subject: string, body: string): Promise<CommitResult> {
    return this.commitOrThrow(ws, subject, body).catch((err: unknown) => {
      throw workspaceFault(ws.repo, 'commit to', err);
    });
  }

  /** Commits what `stage` staged (nothing ran in the worktree since), with the AutoDev-Task trailer. */
  commitStaged(ws: Workspace, staged: StagedChange, subject: string, body: string): Promise<CommitResult> {
    if (staged.files.length === 0) return Promise.resolve({ changed: false, files: [] });
    return this.commitIndex(ws, subject, body).then(
      (commit) => ({ changed: true, commit, files: staged.files }),
      (err: unknown) => {
        throw workspaceFault(ws.repo, 'commit to', err);
      },
    );
  }

  /** The commit the attempt's branch points at now. */
  head(ws: Workspace): Promise<string> {
    return headCommit(ws);
  }

  private async commitOrThrow(ws: Workspace, subject: string, body: string): Promise<CommitResult> {
    const files = await this.changedFiles(ws);
    if (files.length === 0) return { changed: false, files };
    await git(['add', '--all'], this.inTree(ws));
    return { changed: true, commit: await this.commitIndex(ws, subject, body), files };
  }

  /** Commits the index as it is. */
  private async commitIndex(ws: Workspace, subject: string, body: string): Promise<string> {
    const message = `${subject}\n\n${body.trim() ? `${body.trim()}\n\n` : ''}AutoDev-Task: ${ws.taskId}\n`;
    await git(
      [
        '-c',
        `user.name=${this.opts.authorName}`,
        '-c',
        `user.email=${this.opts.authorEmail}`,
        'commit',
        '--quiet',
        '--no-verify',
        '-F',
        '-',
      ],
      { ...this.inTree(ws), input: message },
    );
    return headCommit(ws);
  }

  /**
   * Pushes the task branch, keyed by task id so that repeating it is harmless:
   * - the branch is new: it is created (the lease says it must not exist yet);
   * - it holds only this task's own earlier commits (an attempt that pushed, then died): they are replaced;
   * - someone else added commits meanwhile: ours is rebased on top of theirs, never over them.
   * A rebase conflict throws PushConflictError. With a merge train (`ws.train`), the train branch is
   * advanced to the same commit in the same atomic push, with its own lease: when it moved meanwhile,
   * nothing is pushed and TrainMovedError says where it is now.
   */
  push(ws: Workspace): Promise<{ replaced?: string; rebasedOnto?: string }> {
    return this.pushOrThrow(ws).catch((err: unknown) => {
      throw err instanceof PushConflictError || err instanceof TrainMovedError
        ? err
        : workspaceFault(ws.repo, 'push to', err);
    });
  }

  private async pushOrThrow(ws: Workspace): Promise<{ replaced?: string; rebasedOnto?: string }> {
    const ref = `refs/heads/${ws.branch}`;
    const credential = this.opts.credentialFor?.(ws.repo);
    const train = ws.train;
    const attempt = (expect: string, withTrain = true) => {
      const advance = withTrain && train;
      return git(
        [
          'push',
          '--quiet',
          '--porcelain',
          ...(advance ? ['--atomic'] : []),
          `--force-with-lease=${ref}:${expect}`,
          ...(advance ? [`--force-with-lease=refs/heads/${train.branch}:${train.lease}`] : []),
          'origin',
          `HEAD:${ref}`,
          ...(advance ? [`HEAD:refs/heads/${train.branch}`] : []),
        ],
        { ...this.inTree(ws), credential, timeoutMs: 300_000 },
      );
    };
    try {
      await attempt('');
      return {};
    } catch (err) {
      if (train) {
        const now = await this.remoteHeads(ws, credential);
        if ((now.train ?? '') !== train.lease) throw new TrainMovedError(now);
      }
      // refused: the branch exists on the remote (else the push failed for another reason: rethrow)
      const exists = await git(['fetch', '--quiet', 'origin', `+${ref}:refs/remotes/origin/${ws.branch}`], {
        ...this.inTree(ws),
        credential,
      })
        .then(() => true)
        .catch(() => false);
      if (!exists) throw err;
    }
    const remoteHead = (await git(['rev-parse', `refs/remotes/origin/${ws.branch}`], this.inTree(ws))).trim();
    const theirs = await git(
      ['log', '--format=%H%x00%B%x01', `${ws.baseCommit}..${remoteHead}`],
      this.inTree(ws),
    );
    const commits = theirs
      .split('\x01')
      .map((c) => c.trim())
      .filter(Boolean);
    const ours = commits.every((c) => c.includes(`AutoDev-Task: ${ws.taskId}`));
    if (ours) {
      await attempt(remoteHead);
      return { replaced: remoteHead };
    }
    try {
      await git([...this.identity(), 'rebase', '--quiet', remoteHead], this.inTree(ws));
    } catch (err) {
      await git(['rebase', '--abort'], this.inTree(ws)).catch(() => undefined);
      throw new PushConflictError(
        `The branch ${ws.branch} has commits by someone else that conflict with the agent's change: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    // someone else's commits are not the train's: the train waits for a branch of the task's own
    await attempt(remoteHead, false);
    return { rebasedOnto: remoteHead };
  }

  /** `-c user.name=... -c user.email=...`: who commits and rebases for the platform. */
  private identity(): string[] {
    return ['-c', `user.name=${this.opts.authorName}`, '-c', `user.email=${this.opts.authorEmail}`];
  }

  /** The base branch's (and the train branch's) commits on the remote now. */
  private async remoteHeads(
    ws: Workspace,
    credential: GitCredential | undefined,
  ): Promise<{ base: string; train?: string }> {
    const baseRef = `refs/heads/${ws.baseBranch}`;
    const trainRef = ws.train && `refs/heads/${ws.train.branch}`;
    const listed = await git(['ls-remote', 'origin', baseRef, ...(trainRef ? [trainRef] : [])], {
      ...this.inTree(ws),
      credential,
    });
    const heads = new Map<string, string>();
    for (const line of listed.split('\n')) {
      const [sha, name] = line.trim().split('\t');
      if (sha && name) heads.set(name, sha);
    }
    const base = heads.get(baseRef);
    if (!base)
      throw new WorkspaceError(`The base branch "${ws.baseBranch}" is gone from ${displayRepo(ws.repo)}.`);
    return { base, train: trainRef ? heads.get(trainRef) : undefined };
  }

  /**
   * Where the change goes now: the base branch and the train branch as the remote has them, fetched
   * into the attempt's own repository by name (nothing else of the remote comes in); `onto` is the
   * commit to rebase onto, `lease` what the train's push expects. The remote, the refs and the
   * configuration are the server's: the agent chooses none of them.
   */
  latestTip(ws: Workspace): Promise<{ onto: string; lease: string }> {
    return this.latestTipOrThrow(ws).catch((err: unknown) => {
      throw workspaceFault(ws.repo, 'fetch', err);
    });
  }

  private async latestTipOrThrow(ws: Workspace): Promise<{ onto: string; lease: string }> {
    const credential = this.opts.credentialFor?.(ws.repo);
    const heads = await this.remoteHeads(ws, credential);
    const wanted = [heads.base, heads.train].filter((c): c is string => c !== undefined);
    const missing: string[] = [];
    for (const c of wanted)
      if (
        !(await git(['cat-file', '-e', `${c}^{commit}`], this.inTree(ws))
          .then(() => true)
          .catch(() => false))
      )
        missing.push(c);
    if (missing.length > 0) {
      const specs = [`+refs/heads/${ws.baseBranch}:refs/autodev/base`];
      if (heads.train && ws.train) specs.push(`+refs/heads/${ws.train.branch}:refs/autodev/train`);
      await git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', 'origin', ...specs], {
        ...this.inTree(ws),
        credential,
      });
    }
    if (!ws.train) return { onto: heads.base, lease: '' };
    const tip = heads.train
      ? await this.trainTipIn(this.inTree(ws), heads.base, heads.train, ws.taskId)
      : { onto: heads.base };
    return { onto: tip.onto, lease: heads.train ?? '' };
  }

  /**
   * Puts the task's commits (`ws.baseCommit..HEAD`) on top of `onto`. On a conflict the rebase stays
   * stopped with the conflicted files (markers in them, diff3 style) for the conflict round.
   */
  async rebaseOnto(ws: Workspace, onto: string): Promise<RebaseResult> {
    try {
      await git(
        [
          ...this.identity(),
          '-c',
          'merge.conflictStyle=diff3',
          'rebase',
          '--quiet',
          '--onto',
          onto,
          ws.baseCommit,
        ],
        this.inTree(ws),
      );
    } catch (err) {
      const conflicts = await this.unmerged(ws);
      if (conflicts.length === 0) {
        await this.abortRebase(ws);
        throw workspaceFault(ws.repo, 'rebase onto', err);
      }
      return { ok: false, conflicts };
    }
    ws.baseCommit = onto;
    return { ok: true, head: (await git(['rev-parse', 'HEAD'], this.inTree(ws))).trim() };
  }

  /** Paths git could not merge, with their `git status` codes. */
  private async unmerged(ws: Workspace): Promise<{ path: string; code: string }[]> {
    const out = await git(['status', '--porcelain', '-z', '--untracked-files=no'], this.inTree(ws));
    return out
      .split('\0')
      .filter(Boolean)
      .map((l) => ({ code: l.slice(0, 2), path: l.slice(3) }))
      .filter((e) => /^(DD|AU|UD|UA|DU|AA|UU)$/.test(e.code));
  }

  /**
   * Ends a stopped rebase with the worktree as the agent left it: everything staged, then the commit
   * made. Refused (the rebase stays stopped) when a conflict marker is left in a file that was
   * conflicted, or when nothing of the change is left.
   */
  async continueRebase(
    ws: Workspace,
    onto: string,
    conflicted: readonly string[],
  ): Promise<{ ok: true; head: string } | { ok: false; reason: string }> {
    await git(['add', '--all'], this.inTree(ws));
    const left: string[] = [];
    for (const path of conflicted) {
      const staged = await git(['cat-file', 'blob', `:${path}`], this.inTree(ws)).catch(() => undefined);
      if (staged !== undefined && hasConflictMarkers(staged)) left.push(path);
    }
    if (left.length > 0) return { ok: false, reason: `conflict markers are left in ${left.join(', ')}` };
    const same = await git(['diff', '--cached', '--quiet', 'HEAD'], this.inTree(ws))
      .then(() => true)
      .catch(() => false);
    if (same) return { ok: false, reason: 'the resolution left nothing of the change' };
    await git([...this.identity(), 'rebase', '--continue'], this.inTree(ws));
    ws.baseCommit = onto;
    return { ok: true, head: (await git(['rev-parse', 'HEAD'], this.inTree(ws))).trim() };
  }

  async abortRebase(ws: Workspace): Promise<void> {
    await git(['rebase', '--abort'], this.inTree(ws)).catch(() => undefined);
  }

  /** Folds what changed since the commit (gates and repair rounds after a rebase) into it. */
  async amend(ws: Workspace): Promise<string | undefined> {
    if ((await this.changedFiles(ws)).length === 0) return undefined;
    await git(['add', '--all'], this.inTree(ws));
    await git(
      [...this.identity(), 'commit', '--quiet', '--amend', '--no-edit', '--no-verify'],
      this.inTree(ws),
    );
    return (await git(['rev-parse', 'HEAD'], this.inTree(ws))).trim();
  }

  async remove(ws: Workspace): Promise<void> {
    // the attempt's repository is its own: nothing to tell the mirror (removed off the event loop)
    await rm(ws.taskDir, { recursive: true, force: true });
  }

  /**
   * Removes attempt folders left behind by executors that died, except those `keep` names (attempts
   * still running somewhere), and lets git forget their worktrees.
   */
  async sweep(keep: (taskId: string) => boolean): Promise<number> {
    let removed = 0;
    for (const name of existsSync(this.opts.root) ? readdirSync(this.opts.root) : []) {
      const m = name.match(/^(t[0-9a-z]{20})-[0-9a-f]{6}$/);
      if (!m || keep(m[1] as string)) continue;
      rmSync(join(this.opts.root, name), { recursive: true, force: true });
      removed++;
    }
    // first fetches that a killed process left half done
    for (const name of readdirSync(this.opts.mirrors))
      if (/\.git\.tmp-\d+-\d+$/.test(name) && !isAlive(Number(name.split('-').at(-2))))
        rmSync(join(this.opts.mirrors, name), { recursive: true, force: true });
    if (removed > 0) {
      for (const mirror of readdirSync(this.opts.mirrors).filter((n) => n.endsWith('.git'))) {
        const path = join(this.opts.mirrors, mirror);
        await this.withMirror(path, () =>
          git(['worktree', 'prune'], { cwd: path, gitDir: path }).catch(() => ''),
        );
      }
    }
    return removed;
  }
}

/** Whether a process of this host is alive (a temporary mirror of a live one is still being made). */
function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A value for a git config file: quoted, with `\\` and `"` escaped (control characters are refused at the door). */
function configValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * A branch's commit read from the server's own repository (a loose ref file, else `packed-refs`),
 * without starting git: `undefined` when it is not there as either (git is asked then). Only for
 * repositories no agent can write: the mirror, an attempt's git dir (read-only in the sandbox).
 */
export function readRefFile(gitDir: string, ref: string): string | undefined {
  // a plain name only: nothing that could point outside the repository
  if (ref.split('/').some((part) => part === '' || part.startsWith('.'))) return undefined;
  const isCommitId = (s: string | undefined) =>
    s && /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(s) ? s : undefined;
  try {
    return isCommitId(readFileSync(join(gitDir, ref), 'utf8').trim());
  } catch {
    // not a loose ref
  }
  try {
    for (const line of readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n')) {
      const [id, name] = line.split(' ');
      // a peeled line (^id) follows an annotated tag: a branch is never one
      if (name === ref) return isCommitId(id);
    }
  } catch {
    // no packed refs
  }
  return undefined;
}

/**
 * `git diff --raw -z --patch` output split: the raw records (`:modes ids status NUL path NUL`, one
 * per file, exact paths) give the files; after the NUL that ends them, the patch.
 */
export function splitRawPatch(out: string): { files: string[]; diff: string } {
  const files: string[] = [];
  let at = 0;
  while (out[at] === ':') {
    const metaEnd = out.indexOf('\0', at);
    const pathEnd = metaEnd < 0 ? -1 : out.indexOf('\0', metaEnd + 1);
    if (pathEnd < 0) throw new Error('git diff --raw: a record without its path');
    files.push(out.slice(metaEnd + 1, pathEnd));
    at = pathEnd + 1;
  }
  if (out[at] === '\0') at++;
  return { files, diff: out.slice(at) };
}

/** Writes a new repository's branch as a loose ref file; false for a name git must be asked about. */
function writeRefFile(gitDir: string, ref: string, id: string): boolean {
  if (ref.split('/').some((part) => part === '' || part.startsWith('.') || part.endsWith('.lock')))
    return false;
  const file = join(gitDir, ref);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${id}\n`);
  return true;
}

/** The commit the attempt's branch points at: its ref file, which the commit just wrote (else git says). */
async function headCommit(ws: Workspace): Promise<string> {
  const ref = `refs/heads/${ws.localBranch}`;
  let head = '';
  try {
    head = readFileSync(join(ws.gitDir, 'HEAD'), 'utf8').trim();
  } catch {
    // git says
  }
  const id = head === `ref: ${ref}` ? readRefFile(ws.gitDir, ref) : undefined;
  if (id) return id;
  return (await git(['rev-parse', 'HEAD'], { worktree: ws })).trim();
}

async function defaultBranch(mirror: string): Promise<string> {
  // refs/remotes/origin/HEAD is a symbolic ref file written by `git remote set-head`
  const head = join(mirror, 'refs', 'remotes', 'origin', 'HEAD');
  const ref = existsSync(head) ? readFileSync(head, 'utf8') : '';
  const name = ref.trim().match(/^ref: refs\/remotes\/origin\/(.+)$/)?.[1];
  if (name) return name;
  for (const candidate of ['main', 'master']) {
    const ok = await git(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${candidate}`], {
      cwd: mirror,
      gitDir: mirror,
    })
      .then(() => true)
      .catch(() => false);
    if (ok) return candidate;
  }
  throw new WorkspaceError('The repository has no default branch; pass baseBranch.');
}

async function fetchWithRetry(mirror: string, credential: GitCredential | undefined): Promise<void> {
  try {
    await git(['fetch', '--quiet', '--prune', 'origin'], { cwd: mirror, gitDir: mirror, credential });
  } catch {
    // another process may hold a ref lock on the same mirror: try once more
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
    await git(['fetch', '--quiet', '--prune', 'origin'], { cwd: mirror, gitDir: mirror, credential });
  }
}

/**
 * Writes a mirror's configuration as the server means it, whatever was there: the remote and no
 * more (no hooks, filters, drivers, url rewrites or includes), and drops per-worktree configuration
 * and attributes files.
 */
function resetMirrorConfig(mirror: string, repo: string): void {
  if (/[\0\n\r]/.test(repo)) throw new WorkspaceError('The repository address holds a control character.');
  const quoted = `"${repo.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const config = [
    '[core]',
    '\trepositoryformatversion = 0',
    '\tfilemode = true',
    '\tbare = true',
    '[remote "origin"]',
    `\turl = ${quoted}`,
    '\tfetch = +refs/heads/*:refs/remotes/origin/*',
    '[gc]',
    '\tauto = 0',
    '',
  ].join('\n');
  writeAtomic(join(mirror, 'config'), config);
  for (const extra of ['config.worktree', join('info', 'attributes')])
    rmSync(join(mirror, extra), { recursive: true, force: true });
  mkdirSync(join(mirror, 'info'), { recursive: true });
}
