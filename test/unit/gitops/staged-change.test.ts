import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { type AttemptRun, scanStep } from '../../../lib/worker/attempt-steps.js';
import { KnownSecrets } from '../../../lib/worker/known-secrets.js';
import { diffForScan } from '../../../lib/worker/secret-scan.js';
import { type GitWorkspaces, splitRawPatch, type Workspace } from '../../../lib/worker/workspace.js';
import { makeRemote, tempDir } from '../../support/local-platform.js';
import { workspacesIn } from '../../support/workspaces.js';

const TASK = 't0000000000000000000s';
const AWS_KEY = `AKIA${'Q7RT2MZX4WB9KDLP'}`;

/**
 * The change as staged after the agent's run: one `git diff --raw --patch` gives the files and the
 * diff the secret scan reads, so the scan need not ask git again while the branch is that commit.
 */
describe('the staged change and the scan that reuses its diff', () => {
  let workspaces: GitWorkspaces;
  let ws: Workspace;

  beforeEach(async () => {
    const dir = tempDir('autodev-staged-');
    const remote = makeRemote(dir, {
      'README.md': '# demo\n',
      'old name.txt': 'gone soon\n',
      'keep.md': 'a\n',
    });
    workspaces = workspacesIn(dir);
    ws = await workspaces.prepare(TASK, remote);
  });

  it('lists added, changed, removed and oddly named files exactly, and the diff equals the committed one', async () => {
    // Arrange: what an agent leaves behind
    writeFileSync(join(ws.dir, 'keep.md'), 'a\nb\n');
    rmSync(join(ws.dir, 'old name.txt'));
    writeFileSync(join(ws.dir, 'tab\tin name.txt'), 'x\n');
    writeFileSync(join(ws.dir, 'blob.bin'), Buffer.from([0, 1, 2, 0]));
    // Act
    const staged = await workspaces.stage(ws);
    const committed = await workspaces.commitStaged(ws, staged, 'AutoDev: test', '');
    // Assert
    expect([...staged.files].sort()).toEqual(['blob.bin', 'keep.md', 'old name.txt', 'tab\tin name.txt']);
    expect(committed).toEqual({ changed: true, commit: await workspaces.head(ws), files: staged.files });
    expect(staged.base).toBe(ws.baseCommit);
    expect(staged.diff).toBe(await diffForScan(ws, ws.baseCommit));
  });

  it('commits nothing when the agent changed nothing', async () => {
    const staged = await workspaces.stage(ws);
    expect(staged).toEqual({ files: [], diff: '', base: ws.baseCommit });
    expect(await workspaces.commitStaged(ws, staged, 'AutoDev: test', '')).toEqual({
      changed: false,
      files: [],
    });
    expect(await workspaces.head(ws)).toBe(ws.baseCommit);
  });

  it('splits raw records from the patch, and refuses a record cut short', () => {
    expect(
      splitRawPatch(':100644 100644 aa bb M\0a b\0:000000 100644 00 cc A\0c\0\0diff --git a/c b/c\n'),
    ).toEqual({
      files: ['a b', 'c'],
      diff: 'diff --git a/c b/c\n',
    });
    expect(() => splitRawPatch(':100644 100644 aa bb M\0a')).toThrow(/without its path/);
  });

  /** The scan step as the attempt runs it, after the commit step recorded the staged diff. */
  let round = 0;
  const scanAfterCommit = async (afterCommit: () => Promise<void>, taken?: string) => {
    writeFileSync(join(ws.dir, 'NOTES.md'), `clean ${++round}\n`);
    const staged = await workspaces.stage(ws);
    const { commit } = await workspaces.commitStaged(ws, staged, 'AutoDev: notes', '');
    await afterCommit();
    const run = {
      ws,
      committedDiff: { commit: commit as string, base: staged.base, diff: taken ?? staged.diff },
      ctx: { workspaces, knownSecrets: new KnownSecrets({}), log: () => undefined },
      usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
    } as unknown as AttemptRun;
    return scanStep(run);
  };

  it('scans the branch again when it is no longer the commit whose diff was taken (an amend adding a key)', async () => {
    // Act: a later step (gates after a rebase) folds a file holding a key into the commit
    const report = await scanAfterCommit(async () => {
      writeFileSync(join(ws.dir, 'deploy.env'), `AWS_ACCESS_KEY_ID=${AWS_KEY}\n`);
      expect(await workspaces.amend(ws)).toBeDefined();
    });
    // Assert
    expect(report?.fatalCode).toBe('secret_detected');
    expect(report?.message).toContain('deploy.env:1');
  });

  it('scans the taken diff, without git, while the branch is that commit', async () => {
    // Arrange: a recorded diff that differs from the branch shows which one was read
    const recorded = `diff --git a/x.env b/x.env\n--- /dev/null\n+++ b/x.env\n@@ -0,0 +1 @@\n+K=${AWS_KEY}\n`;
    // Act, Assert
    expect(await scanAfterCommit(async () => undefined)).toBeUndefined();
    expect((await scanAfterCommit(async () => undefined, recorded))?.message).toContain('x.env:1');
  });
});
