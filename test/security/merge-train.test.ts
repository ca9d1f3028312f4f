import { appendFileSync, cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { conflictPrompt } from '../../lib/core/merge-train.js';
import { describeConflicts } from '../../lib/worker/merge-train.js';
import type { GitWorkspaces, Workspace } from '../../lib/worker/workspace.js';
import { gitIn, makeRemote, tempDir } from '../support/local-platform.js';
import { workspacesIn } from '../support/workspaces.js';

/**
 * The merge train's git commands (ls-remote, fetch, rebase, continue, push) run as the server, with
 * the platform's credentials, on a worktree an agent wrote. What the agent wrote there must not choose
 * the repository they reach, run a program, or make the server read a file outside the worktree into
 * the conflict round's prompt.
 */

const APP = 'alpha\nbeta\ngamma\n';

describe('merge train: what an agent wrote in its worktree does not steer the server’s git', () => {
  let dir: string;
  let remote: string;
  let workspaces: GitWorkspaces;
  const marker = () => join(dir, 'HOOK-RAN');

  /** Another task's change landed on the train meanwhile: a commit on `autodev/train/main`. */
  const land = (file: string, content: string) => {
    const clone = join(dir, `land-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    gitIn(dir, ['clone', '--quiet', remote, clone]);
    gitIn(clone, ['fetch', '--quiet', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
    const start = gitIn(clone, ['branch', '-r', '--list', 'origin/autodev/train/main']).trim()
      ? 'origin/autodev/train/main'
      : 'origin/main';
    gitIn(clone, ['checkout', '--quiet', '-B', 'landing', start]);
    writeFileSync(join(clone, file), content);
    gitIn(clone, ['commit', '--quiet', '-am', 'another task landed']);
    gitIn(clone, ['push', '--quiet', 'origin', 'HEAD:refs/heads/autodev/train/main', '--force']);
    return gitIn(clone, ['rev-parse', 'HEAD']).trim();
  };

  /** What a hostile agent can write: its worktree, and (were the sandbox to let it) its git dir's config. */
  const plant = (ws: Workspace) => {
    const hooks = join(dir, 'evil-hooks');
    mkdirSync(hooks, { recursive: true });
    for (const hook of [
      'pre-rebase',
      'post-rewrite',
      'post-checkout',
      'post-commit',
      'pre-push',
      'reference-transaction',
    ])
      writeFileSync(join(hooks, hook), `#!/bin/sh\ntouch '${marker()}'\n`, { mode: 0o755 });
    const evilConfig = [
      '[core]',
      `\thooksPath = ${hooks}`,
      `\tfsmonitor = touch '${marker()}'`,
      '[merge "evil"]',
      `\tdriver = touch '${marker()}'; false`,
      '[filter "evil"]',
      `\tclean = touch '${marker()}'; cat`,
      `\tsmudge = touch '${marker()}'; cat`,
      '[remote "origin"]',
      `\turl = ${join(dir, 'other-tenant.git')}`,
      '',
    ].join('\n');
    // a git dir of its own, named by the worktree's .git file
    const evilGitDir = join(dir, `evil-git-${ws.taskId}`);
    cpSync(ws.gitDir, evilGitDir, { recursive: true });
    appendFileSync(join(evilGitDir, 'config'), evilConfig);
    writeFileSync(join(ws.dir, '.git'), `gitdir: ${evilGitDir}\n`);
    // and the attempt's own git dir's configuration (read-only in the sandbox; put back by its seal)
    appendFileSync(join(ws.gitDir, 'config'), evilConfig);
    writeFileSync(join(ws.dir, '.gitattributes'), '* merge=evil filter=evil diff=evil\n');
  };

  beforeAll(() => {
    dir = tempDir('autodev-train-security-');
    mkdirSync(join(dir, 'repo'));
    remote = makeRemote(join(dir, 'repo'), { 'app.txt': APP });
    // another tenant's repository, whose train holds what the agent would like to read
    mkdirSync(join(dir, 'other'));
    const other = makeRemote(join(dir, 'other'), { 'app.txt': 'OTHER TENANT SECRET\n' });
    gitIn(dir, ['clone', '--quiet', '--bare', other, join(dir, 'other-tenant.git')]);
    workspaces = workspacesIn(dir);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fetches and rebases in the task’s own repository with no planted hook, driver, filter or remote, then lands', async () => {
    // Arrange: the agent's change, its plants, and a conflicting change landed meanwhile
    const ws = await workspaces.prepare('tsk_train_hostile', remote, undefined, { train: true });
    writeFileSync(join(ws.dir, 'app.txt'), 'alpha by the agent\nbeta\ngamma\n');
    plant(ws);
    await workspaces.commit(ws, 'AutoDev: mark alpha', '');
    const landed = land('app.txt', 'alpha by another task\nbeta\ngamma\n');

    // Act: the train's catch-up as the push step runs it
    const tip = await workspaces.latestTip(ws);
    const rebased = await workspaces.rebaseOnto(ws, tip.onto);
    if (rebased.ok) throw new Error('expected a conflict');
    const prompt = conflictPrompt('Mark alpha', 'the merge train', describeConflicts(ws, rebased.conflicts));
    writeFileSync(join(ws.dir, 'app.txt'), 'alpha by another task, then by the agent\nbeta\ngamma\n');
    const resolved = await workspaces.continueRebase(ws, tip.onto, ['app.txt']);
    ws.train = { branch: 'autodev/train/main', lease: tip.lease };
    await workspaces.push(ws);

    // Assert: the task's own repository, its own train, nothing planted ran
    expect(tip).toEqual({ onto: landed, lease: landed });
    expect(rebased.conflicts).toEqual([{ path: 'app.txt', code: 'UU' }]);
    expect(prompt).toContain('alpha by another task');
    expect(prompt).not.toContain('OTHER TENANT SECRET');
    expect(resolved.ok).toBe(true);
    expect(existsSync(marker())).toBe(false);
    const train = gitIn(remote, ['rev-parse', 'refs/heads/autodev/train/main']).trim();
    expect(gitIn(remote, ['rev-parse', `${train}^`]).trim()).toBe(landed);
    expect(gitIn(remote, ['show', `${train}:app.txt`])).toBe(
      'alpha by another task, then by the agent\nbeta\ngamma\n',
    );
    await workspaces.remove(ws);
  });

  it('never reads what a conflicted path links to into the conflict prompt', async () => {
    // Arrange: the agent's change makes the file a link to a file it may not read (another task's
    // worktree in its own conflict round, markers and all); the train changed the file
    const secret = join(dir, 'other-task-app.txt');
    writeFileSync(secret, '<<<<<<< HEAD\nOTHER_TASK_CANARY=7f3a9c\n=======\nmine\n>>>>>>> 1234567\n');
    const ws = await workspaces.prepare('tsk_train_link', remote, undefined, { train: true });
    rmSync(join(ws.dir, 'app.txt'));
    symlinkSync(secret, join(ws.dir, 'app.txt'));
    await workspaces.commit(ws, 'AutoDev: link', '');
    land('app.txt', 'changed by another task\n');

    // Act
    const tip = await workspaces.latestTip(ws);
    const rebased = await workspaces.rebaseOnto(ws, tip.onto);
    if (rebased.ok) throw new Error('expected a conflict');
    const files = describeConflicts(ws, rebased.conflicts);
    const prompt = conflictPrompt('Link the file', 'the merge train', files);

    // Assert: the path is listed, what it links to is not read
    expect(files.map((f) => f.path)).toContain('app.txt');
    expect(prompt).toContain('### app.txt');
    expect(prompt).not.toContain('OTHER_TASK_CANARY');
    await workspaces.abortRebase(ws);
    await workspaces.remove(ws);
  });
});
