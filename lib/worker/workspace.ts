import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GitError, git } from './git.js';

/** The task branch moved on the remote in a way the agent's commit cannot be put on top of. */
export class PushConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PushConflictError';
  }
}

export interface Workspace {
  taskId: string;
  /** The git worktree the agent works in. */
  dir: string;
  /** A private HOME for the agent, outside the worktree. */
  homeDir: string;
  branch: string;
  baseBranch: string;
  baseCommit: string;
  mirror: string;
}

export interface CommitResult {
  changed: boolean;
  commit?: string;
  files: string[];
}

export interface WorkspaceOptions {
  /** Where worktrees are made, one folder per task. */
  root: string;
  /** Where bare mirrors of repositories are cached, one per repo URL. */
  mirrors: string;
  authorName: string;
  authorEmail: string;
  branchPrefix: string;
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

  /** Runs `fn` with the mirror locked (git refuses concurrent ref updates in one repository). */
  private withMirror<T>(mirror: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(mirror) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.locks.set(
      mirror,
      next.catch(() => undefined),
    );
    return next;
  }

  private async ensureMirror(repo: string): Promise<string> {
    const mirror = this.mirrorPath(repo);
    try {
      if (!existsSync(join(mirror, 'HEAD'))) throw new Error('no mirror yet');
      await fetchWithRetry(mirror);
    } catch {
      const tmp = `${mirror}.tmp-${process.pid}-${Date.now()}`;
      await git(['init', '--quiet', '--bare', tmp]);
      await git(['remote', 'add', 'origin', repo], { cwd: tmp });
      await git(['config', 'gc.auto', '0'], { cwd: tmp });
      await git(['fetch', '--quiet', '--prune', 'origin'], { cwd: tmp });
      await git(['remote', 'set-head', 'origin', '--auto'], { cwd: tmp }).catch(() => undefined);
      rmSync(mirror, { recursive: true, force: true });
      renameSync(tmp, mirror);
    }
    return mirror;
  }

  /** Fetches the repo into its mirror and adds a worktree on a fresh task branch from the base. */
  async prepare(taskId: string, repo: string, baseBranch?: string): Promise<Workspace> {
    const mirror = this.mirrorPath(repo);
    return this.withMirror(mirror, async () => {
      await this.ensureMirror(repo);
      const base = baseBranch ?? (await defaultBranch(mirror));
      const baseCommit = (
        await git(['rev-parse', '--verify', `refs/remotes/origin/${base}^{commit}`], { cwd: mirror }).catch(
          () => {
            throw new Error(`The base branch "${base}" does not exist in ${repo}.`);
          },
        )
      ).trim();
      const taskDir = join(this.opts.root, taskId);
      const dir = join(taskDir, 'repo');
      const homeDir = join(taskDir, 'home');
      if (existsSync(taskDir)) {
        // a previous attempt left its worktree behind
        await git(['worktree', 'remove', '--force', dir], { cwd: mirror }).catch(() => undefined);
        rmSync(taskDir, { recursive: true, force: true });
      }
      const branch = this.branchFor(taskId);
      const add = () => git(['worktree', 'add', '--quiet', '-B', branch, dir, baseCommit], { cwd: mirror });
      await add().catch(async () => {
        // a worktree deleted behind git's back still holds the branch: forget it and try again
        await git(['worktree', 'prune'], { cwd: mirror });
        await add();
      });
      mkdirSync(homeDir, { recursive: true });
      return { taskId, dir, homeDir, branch, baseBranch: base, baseCommit, mirror };
    });
  }

  /** Files the agent changed, added or removed in the worktree. */
  async changedFiles(ws: Workspace): Promise<string[]> {
    const out = await git(['status', '--porcelain', '--untracked-files=all', '-z'], { cwd: ws.dir });
    return out
      .split('\0')
      .filter(Boolean)
      .map((l) => l.slice(3));
  }

  /** Commits everything the agent changed, with the AutoDev-Task trailer. */
  async commit(ws: Workspace, subject: string, body: string): Promise<CommitResult> {
    const files = await this.changedFiles(ws);
    if (files.length === 0) return { changed: false, files };
    await git(['add', '--all'], { cwd: ws.dir });
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
      { cwd: ws.dir, input: message },
    );
    const commit = (await git(['rev-parse', 'HEAD'], { cwd: ws.dir })).trim();
    return { changed: true, commit, files };
  }

  /**
   * Pushes the task branch, keyed by task id so that repeating it is harmless:
   * - the branch is new: it is created (the lease says it must not exist yet);
   * - it holds only this task's own earlier commits (an attempt that pushed, then died): they are replaced;
   * - someone else added commits meanwhile: ours is rebased on top of theirs, never over them.
   * A rebase conflict throws PushConflictError.
   */
  async push(ws: Workspace): Promise<{ replaced?: string; rebasedOnto?: string }> {
    const ref = `refs/heads/${ws.branch}`;
    const attempt = (expect: string) =>
      git(
        ['push', '--quiet', '--porcelain', `--force-with-lease=${ref}:${expect}`, 'origin', `HEAD:${ref}`],
        {
          cwd: ws.dir,
          timeoutMs: 300_000,
        },
      );
    try {
      await attempt('');
      return {};
    } catch (err) {
      if (!(err instanceof GitError) || !/stale info|rejected|already exists/i.test(err.stderr)) throw err;
    }
    await git(['fetch', '--quiet', 'origin', `+${ref}:refs/remotes/origin/${ws.branch}`], { cwd: ws.dir });
    const remoteHead = (await git(['rev-parse', `refs/remotes/origin/${ws.branch}`], { cwd: ws.dir })).trim();
    const theirs = await git(['log', '--format=%H%x00%B%x01', `${ws.baseCommit}..${remoteHead}`], {
      cwd: ws.dir,
    });
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
      await git(
        [
          '-c',
          `user.name=${this.opts.authorName}`,
          '-c',
          `user.email=${this.opts.authorEmail}`,
          'rebase',
          '--quiet',
          remoteHead,
        ],
        {
          cwd: ws.dir,
        },
      );
    } catch (err) {
      await git(['rebase', '--abort'], { cwd: ws.dir }).catch(() => undefined);
      throw new PushConflictError(
        `The branch ${ws.branch} has commits by someone else that conflict with the agent's change: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    await attempt(remoteHead);
    return { rebasedOnto: remoteHead };
  }

  async remove(ws: Workspace): Promise<void> {
    await this.withMirror(ws.mirror, async () => {
      await git(['worktree', 'remove', '--force', ws.dir], { cwd: ws.mirror }).catch(() => undefined);
      await git(['branch', '-D', ws.branch], { cwd: ws.mirror }).catch(() => undefined);
      rmSync(join(this.opts.root, ws.taskId), { recursive: true, force: true });
    });
  }
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
    })
      .then(() => true)
      .catch(() => false);
    if (ok) return candidate;
  }
  throw new Error('The repository has no default branch; pass baseBranch.');
}

async function fetchWithRetry(mirror: string): Promise<void> {
  try {
    await git(['fetch', '--quiet', '--prune', 'origin'], { cwd: mirror });
  } catch {
    // another process may hold a ref lock on the same mirror: try once more
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
    await git(['fetch', '--quiet', '--prune', 'origin'], { cwd: mirror });
  }
}
