import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { ClaudeDriver } from '../../../lib/worker/drivers/claude.js';
import { type ProviderConfig, runAttempt } from '../../../lib/worker/run-attempt.js';
import { GitWorkspaces } from '../../../lib/worker/workspace.js';
import { FAKES, gitIn, makeRemote, tempDir } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';
import { FORGE_TOKEN, type GitOpsWorld, remoteBranch, startWorld } from './helpers.js';

/**
 * The merge train with a forge: a pull request merged into the base branch while a task's agent
 * works (here a commit pushed to `main`, as the forge's merge does) is under the task's change
 * before it is pushed; its gates run again; its pull request is opened against the new base. No
 * train branch is kept: the forge merges.
 */

const CLAUDE: ProviderConfig = { name: 'claude', driver: new ClaudeDriver(), bin: 'claude', env: {} };
const APP = 'alpha\nbeta\ngamma\ndelta\nomega\n';
const GATED =
  'gates:\n  - name: has-app\n    run: test -f app.txt\n    timeoutSeconds: 30\nrepairRounds: 0\ndraftOnFailure: false\n';

let world: GitOpsWorld | undefined;
afterEach(async () => {
  expect(world?.forge.violations ?? []).toEqual([]);
  await world?.close();
  world = undefined;
});

/** A pull request merged on the forge: a commit on `main` of the remote, changing app.txt. */
function merge(w: GitOpsWorld, content: string): string {
  const clone = join(tempDir('autodev-merged-'), 'clone');
  gitIn(w.dir, ['clone', '--quiet', w.remote, clone]);
  writeFileSync(join(clone, 'app.txt'), content);
  gitIn(clone, ['commit', '--quiet', '-am', 'Merge pull request #7']);
  gitIn(clone, ['push', '--quiet', 'origin', 'HEAD:main']);
  return gitIn(clone, ['rev-parse', 'HEAD']).trim();
}

async function attempt(
  w: Pick<GitOpsWorld, 'repoUrl' | 'workspaces'> & Partial<GitOpsWorld>,
  prompt: string,
  meanwhile: () => void,
) {
  const lines: string[] = [];
  const task: Task = makeTask({
    repo: w.repoUrl,
    prompt,
    provider: 'claude',
    status: 'running',
    attempts: [{ number: 1, provider: 'claude', startedAt: new Date().toISOString(), outcome: 'running' }],
  });
  const report = await runAttempt({
    task,
    role: { ...(BUILT_IN_ROLES.backend as NonNullable<typeof BUILT_IN_ROLES.backend>), timeoutSeconds: 60 },
    provider: CLAUDE,
    workspaces: w.workspaces,
    baseEnv: { PATH: `${FAKES}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    defaultTimeoutSeconds: 60,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    onAgentStart: meanwhile,
    mergeTrain: !w.forge,
    forges: w.forge && [
      { host: w.host ?? '', kind: 'github', apiBaseUrl: w.forge.githubApi, tokenSecret: 'GHE_TOKEN' },
    ],
    secrets: { GHE_TOKEN: FORGE_TOKEN },
  });
  return { task, report, log: lines.join('\n'), branch: `autodev/${task.id}` };
}

describe('merge train with a forge: a pull request merged meanwhile is under the change before its push', () => {
  it('rebases onto the moved base, gates again, and opens the pull request on top of it', async () => {
    // Arrange
    world = await startWorld({ 'app.txt': APP, '.autodev.yml': GATED });
    const w = world;
    let merged = '';

    // Act: while the agent works, a pull request changing another line of the file is merged
    const out = await attempt(
      w,
      'Mark omega [fake:replace=app.txt:omega:omega by the task] [fake:sleep=800]',
      () => {
        merged = merge(w, APP.replace('alpha', 'alpha by the merged pull request'));
      },
    );

    // Assert
    expect(out.report).toMatchObject({
      ok: true,
      gates: [expect.objectContaining({ name: 'has-app', ok: true })],
    });
    const pushed = remoteBranch(w.remote, out.branch) as string;
    expect(pushed).toBe(out.report.commit);
    expect(gitIn(w.remote, ['rev-parse', `${pushed}^`]).trim()).toBe(merged);
    expect(gitIn(w.remote, ['show', `${pushed}:app.txt`])).toBe(
      APP.replace('alpha', 'alpha by the merged pull request').replace('omega', 'omega by the task'),
    );
    expect(out.log).toContain(`merge train: main moved to ${merged.slice(0, 12)}`);
    expect(out.log.match(/gate has-app: passed/g)).toHaveLength(2);
    expect(remoteBranch(w.remote, 'autodev/train/main')).toBeUndefined();
    expect(w.forge.pulls.find((p) => p.head === out.branch)).toMatchObject({ base: 'main', state: 'open' });
  }, 60_000);

  it('pushes without a rebase when the base did not move', async () => {
    // Arrange
    world = await startWorld({ 'app.txt': APP });

    // Act
    const out = await attempt(
      world,
      'Mark beta [fake:replace=app.txt:beta:beta by the task]',
      () => undefined,
    );

    // Assert
    expect(out.report.ok).toBe(true);
    expect(out.log).not.toContain('merge train');
    expect(gitIn(world.remote, ['rev-parse', `${out.report.commit}^`]).trim()).toBe(
      gitIn(world.remote, ['rev-parse', 'main']).trim(),
    );
  }, 60_000);
});

describe('merge train without a forge: an attempt again of the task on the train’s last car', () => {
  it('replaces its own car instead of stacking on it', async () => {
    // Arrange: the task's first attempt landed (pushed with the train), then its attempt was abandoned
    const dir = tempDir('autodev-train-again-');
    const remote = makeRemote(dir, { 'app.txt': APP });
    const workspaces = new GitWorkspaces({
      root: join(dir, 'work'),
      mirrors: join(dir, 'mirrors'),
      authorName: 'AutoDev',
      authorEmail: 'autodev@example.com',
      branchPrefix: 'autodev/',
    });
    const base = gitIn(remote, ['rev-parse', 'main']).trim();
    const first = await workspaces.prepare('tsk_again', remote, undefined, { train: true });
    writeFileSync(join(first.dir, 'app.txt'), 'first try\n');
    await workspaces.commit(first, 'AutoDev: try', '');
    await workspaces.push(first);
    const firstCommit = gitIn(remote, ['rev-parse', 'autodev/train/main']).trim();

    // Act: the next attempt of the same task
    const again = await workspaces.prepare('tsk_again', remote, undefined, { train: true });
    writeFileSync(join(again.dir, 'app.txt'), 'second try\n');
    const committed = await workspaces.commit(again, 'AutoDev: try', '');
    await workspaces.push(again);

    // Assert
    expect(again.baseCommit).toBe(base);
    expect(again.train).toEqual({ branch: 'autodev/train/main', lease: firstCommit });
    expect(gitIn(remote, ['rev-parse', 'autodev/train/main']).trim()).toBe(committed.commit);
    expect(gitIn(remote, ['rev-parse', `${committed.commit}^`]).trim()).toBe(base);
    expect(gitIn(remote, ['rev-parse', 'autodev/tsk_again']).trim()).toBe(committed.commit);
  });
});

describe('merge train without a forge: only a gated change is ready', () => {
  it('pushes a change whose gates fail for a draft without advancing the train', async () => {
    // Arrange
    const dir = tempDir('autodev-train-gates-');
    const gate = 'gates:\n  - name: never\n    run: exit 1\nrepairRounds: 0\ndraftOnFailure: true\n';
    const remote = makeRemote(dir, { 'app.txt': APP, '.autodev.yml': gate });
    const workspaces = new GitWorkspaces({
      root: join(dir, 'work'),
      mirrors: join(dir, 'mirrors'),
      authorName: 'AutoDev',
      authorEmail: 'autodev@example.com',
      branchPrefix: 'autodev/',
    });

    // Act
    const out = await attempt(
      { repoUrl: remote, workspaces },
      'Mark beta [fake:replace=app.txt:beta:beta!]',
      () => undefined,
    );

    // Assert
    expect(out.report).toMatchObject({ ok: true, message: 'quality gates failed: never' });
    expect(gitIn(remote, ['rev-parse', out.branch]).trim()).toBe(out.report.commit);
    expect(out.log).toContain('merge train: the quality gates fail, so autodev/train/main is not advanced');
    expect(() =>
      gitIn(remote, ['rev-parse', '--verify', '--quiet', 'refs/heads/autodev/train/main']),
    ).toThrow();
  }, 60_000);
});
