import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { gitEnv } from '../../../lib/worker/git.js';
import { scanBeforePush } from '../../../lib/worker/secret-scan.js';
import type { GitWorkspaces, Workspace } from '../../../lib/worker/workspace.js';
import { gitIn, makeRemote, tempDir } from '../../support/local-platform.js';
import { workspacesIn } from '../../support/workspaces.js';

const TASK_1 = 't0000000000000000000a';
const TASK_2 = 't0000000000000000000b';

/**
 * Git the agent cannot steer: an agent plants in its repository every configuration, attribute and
 * hook that makes git run a program, rewrites the worktree's `.git` file and redirects the remote;
 * the server's own git commands (commit, scan, push, then the next task's fetch and checkout) run
 * none of them, and what is pushed is what the agent wrote.
 */
describe('the server’s git runs nothing the agent planted in the repository', () => {
  let dir: string;
  let remote: string;
  let decoy: string;
  let markers: string;
  let workspaces: GitWorkspaces;
  let ws: Workspace;

  /** A program that leaves a marker file named `name` (and, as a clean filter, alters the content). */
  const program = (name: string, body = '') => {
    const file = join(dir, 'bin', name);
    writeFileSync(file, `#!/bin/sh\necho "$@" > '${join(markers, name)}'\n${body}`);
    chmodSync(file, 0o755);
    return file;
  };
  /** What the agent runs in its worktree: plain git, as any process in the worktree could. */
  const agentGit = (args: string[]) => gitIn(ws.dir, args);

  beforeAll(async () => {
    dir = tempDir('autodev-steer-');
    markers = join(dir, 'markers');
    mkdirSync(markers);
    mkdirSync(join(dir, 'bin'));
    remote = makeRemote(dir, { 'README.md': '# demo\n' });
    decoy = join(dir, 'decoy.git');
    gitIn(dir, ['init', '--quiet', '--bare', decoy]);
    workspaces = workspacesIn(dir);
    ws = await workspaces.prepare(TASK_1, remote);

    // Arrange: the agent's work, then everything it plants
    writeFileSync(join(ws.dir, 'NOTES.md'), 'hello\n');
    const hooks = join(dir, 'hooks');
    mkdirSync(hooks);
    const hookNames = [
      'pre-commit',
      'prepare-commit-msg',
      'commit-msg',
      'post-commit',
      'pre-push',
      'post-checkout',
      'reference-transaction',
      'post-index-change',
      'pre-auto-gc',
      'post-rewrite',
      'pre-rebase',
      'fsmonitor-watchman',
    ];
    for (const h of hookNames)
      writeFileSync(join(hooks, h), `#!/bin/sh\ntouch '${join(markers, `hook-${h}`)}'\n`);
    for (const h of hookNames) chmodSync(join(hooks, h), 0o755);
    const common = agentGit(['rev-parse', '--path-format=absolute', '--git-common-dir']).trim();
    mkdirSync(join(common, 'hooks'), { recursive: true });
    for (const h of hookNames) {
      writeFileSync(join(common, 'hooks', h), `#!/bin/sh\ntouch '${join(markers, `own-hook-${h}`)}'\n`);
      chmodSync(join(common, 'hooks', h), 0o755);
    }
    const settings: [string, string][] = [
      ['core.fsmonitor', program('fsmonitor')],
      ['core.hooksPath', hooks],
      ['core.pager', program('pager')],
      ['core.editor', program('editor')],
      ['sequence.editor', program('sequence-editor')],
      ['core.askPass', program('askpass')],
      ['core.sshCommand', program('ssh')],
      ['credential.helper', `!${program('credential-helper')}`],
      ['gpg.program', program('gpg')],
      ['commit.gpgSign', 'true'],
      ['diff.external', program('diff-external')],
      ['filter.evil.clean', program('clean', 'echo ALTERED BY THE CLEAN FILTER\n')],
      ['filter.evil.smudge', program('smudge', 'echo ALTERED BY THE SMUDGE FILTER\n')],
      ['diff.evil.textconv', program('textconv', 'cat "$1"\n')],
      ['diff.evil.command', program('diff-command')],
      ['merge.evil.driver', program('merge-driver')],
      ['remote.origin.uploadpack', program('upload-pack', 'exec git-upload-pack "$@"\n')],
      ['remote.origin.receivepack', program('receive-pack', 'exec git-receive-pack "$@"\n')],
      [`url.${decoy}.insteadOf`, remote],
      [`url.${decoy}.pushInsteadOf`, remote],
      ['core.alternateRefsCommand', program('alternate-refs')],
    ];
    for (const [k, v] of settings) agentGit(['config', k, v]);
    writeFileSync(join(dir, 'included.cfg'), `[core]\n\tfsmonitor = ${program('included-fsmonitor')}\n`);
    agentGit(['config', 'include.path', join(dir, 'included.cfg')]);
    writeFileSync(join(ws.dir, '.gitattributes'), '* filter=evil diff=evil merge=evil\n');
    mkdirSync(join(common, 'info'), { recursive: true });
    writeFileSync(join(common, 'info', 'attributes'), '* filter=evil diff=evil merge=evil\n');
    // last: the worktree's `.git` now names a repository the agent made, configured to run programs
    const forged = join(dir, 'forged.git');
    gitIn(dir, ['init', '--quiet', '--bare', forged]);
    gitIn(forged, ['config', 'core.fsmonitor', program('forged-fsmonitor')]);
    gitIn(forged, ['config', 'core.bare', 'false']);
    writeFileSync(join(ws.dir, '.git'), `gitdir: ${forged}\n`);
  }, 60_000);

  afterAll(() => undefined);

  it('commits, scans and pushes what the agent wrote, running none of the planted programs', async () => {
    // Act
    const committed = await workspaces.commit(ws, 'AutoDev: notes', 'summary');
    const findings = await scanBeforePush(ws, ws.baseCommit);
    await workspaces.push(ws);
    // Assert
    expect(readdirSync(markers)).toEqual([]);
    expect(findings).toEqual([]);
    expect(committed.files.sort()).toEqual(['.gitattributes', 'NOTES.md']);
    const pushed = gitIn(remote, ['rev-parse', `refs/heads/${ws.branch}`]).trim();
    expect(pushed).toBe(committed.commit);
    expect(gitIn(remote, ['show', `${ws.branch}:NOTES.md`])).toBe('hello\n');
    expect(gitIn(decoy, ['for-each-ref'])).toBe('');
  });

  it('the next task fetches and checks out that branch, running none of them either', async () => {
    // Act: the shared mirror still holds what the agent planted in it
    const next = await workspaces.prepare(TASK_2, remote, ws.branch);
    // Assert
    expect(readdirSync(markers)).toEqual([]);
    expect(readFileSync(join(next.dir, 'NOTES.md'), 'utf8')).toBe('hello\n');
    expect(existsSync(join(next.dir, '.gitattributes'))).toBe(true);
    await workspaces.remove(next);
  });

  it('passes git none of the server’s environment but what it needs', () => {
    const saved = { ...process.env };
    process.env.ANTHROPIC_API_KEY = 'sk-ant-server-key';
    process.env.GIT_TOKEN = 'server-git-token';
    process.env.GIT_ASKPASS = '/tmp/askpass';
    process.env.GIT_CONFIG_PARAMETERS = "'core.fsmonitor'='/tmp/x'";
    process.env.GIT_DIR = '/tmp/elsewhere';
    try {
      const env = gitEnv();
      for (const name of [
        'ANTHROPIC_API_KEY',
        'GIT_TOKEN',
        'GIT_ASKPASS',
        'GIT_CONFIG_PARAMETERS',
        'GIT_DIR',
      ])
        expect(env[name]).toBeUndefined();
      expect(env).toMatchObject({ GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' });
    } finally {
      process.env = saved;
    }
  });
});
