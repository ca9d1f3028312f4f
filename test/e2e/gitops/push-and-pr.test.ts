import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { pullRequestTitle, renderPullRequestBody, resolveForge } from '../../../lib/worker/forge/index.js';
import { git } from '../../../lib/worker/git.js';
import { describeFindings, scanBeforePush } from '../../../lib/worker/secret-scan.js';
import { makeTask } from '../../support/tasks.js';
import { FORGE_TOKEN, type GitOpsWorld, remoteBranch, startWorld } from './helpers.js';

let world: GitOpsWorld | undefined;
afterEach(async () => {
  expect(world?.forge.violations ?? []).toEqual([]);
  await world?.close();
  world = undefined;
});

const forgeConfig = (w: GitOpsWorld) => [
  { host: w.host, kind: 'github' as const, apiBaseUrl: w.forge.githubApi, tokenSecret: 'GHE_TOKEN' },
];

/** What a worker does after the agent: commit, scan, push over HTTP, open or update the pull request. */
async function deliver(w: GitOpsWorld, taskId: string, edit: (dir: string) => void) {
  const task = makeTask({
    id: taskId,
    repo: w.repoUrl,
    prompt: 'Document the shop\n\nAdd usage notes.',
    provider: 'claude',
  });
  const ws = await w.workspaces.prepare(task.id, task.repo);
  try {
    edit(ws.dir);
    const committed = await w.workspaces.commit(ws, pullRequestTitle(task), 'summary');
    const findings = await scanBeforePush(ws.dir, ws.baseCommit);
    if (findings.length > 0) return { pushed: false as const, message: describeFindings(findings) };
    await w.workspaces.push(ws);
    const forge = resolveForge(task.repo, forgeConfig(w), { GHE_TOKEN: FORGE_TOKEN });
    if (!forge) throw new Error('the local forge was not resolved');
    const pr = await forge.findOrCreatePullRequest({
      repo: task.repo,
      branch: ws.branch,
      base: ws.baseBranch,
      title: pullRequestTitle(task),
      body: renderPullRequestBody({ ...task, commit: committed.commit }, []),
      labels: ['autodev'],
      draft: false,
    });
    return { pushed: true as const, pr, commit: committed.commit, branch: ws.branch };
  } finally {
    await w.workspaces.remove(ws);
  }
}

describe('push over smart HTTP, then a pull request', () => {
  it('pushes the task branch through git http-backend and opens one pull request for it', async () => {
    // Arrange
    world = await startWorld({ 'README.md': '# shop\n' });

    // Act
    const out = await deliver(world, 'tsk_push1', (dir) =>
      writeFileSync(join(dir, 'USAGE.md'), 'Run `make`.\n'),
    );

    // Assert
    if (!out.pushed) throw new Error(out.message);
    expect(remoteBranch(world.remote, 'autodev/tsk_push1')).toBe(out.commit);
    expect(
      world.git.requests.some(
        (r) => r.service === 'git-receive-pack' && r.method === 'POST' && r.status === 200,
      ),
    ).toBe(true);
    expect(out.pr).toMatchObject({ number: 1, created: true });
    expect(world.forge.pulls).toHaveLength(1);
    expect(world.forge.pulls[0]).toMatchObject({
      owner: 'acme',
      repo: 'shop',
      head: 'autodev/tsk_push1',
      base: 'main',
    });
    expect(world.forge.pulls[0]?.body).toContain(`\`${out.commit?.slice(0, 12)}\``);
  });

  it('a second attempt of the task replaces the branch and updates the same pull request', async () => {
    world = await startWorld({ 'README.md': '# shop\n' });
    const first = await deliver(world, 'tsk_retry', (dir) => writeFileSync(join(dir, 'USAGE.md'), 'v1\n'));
    const second = await deliver(world, 'tsk_retry', (dir) => writeFileSync(join(dir, 'USAGE.md'), 'v2\n'));
    if (!first.pushed || !second.pushed) throw new Error('not pushed');
    expect(second.commit).not.toBe(first.commit);
    expect(remoteBranch(world.remote, 'autodev/tsk_retry')).toBe(second.commit);
    expect(second.pr).toEqual({ ...first.pr, created: false });
    expect(world.forge.pulls).toHaveLength(1);
    expect(world.forge.pulls[0]?.body).toContain(`\`${second.commit?.slice(0, 12)}\``);
  });

  it('blocks the push of a change that adds a key: no branch, no pull request', async () => {
    world = await startWorld({ 'README.md': '# shop\n' });
    const key = ['AKIA', 'Q7ZRT4WX2M9PLK3N'].join('');
    const out = await deliver(world, 'tsk_leak', (dir) =>
      writeFileSync(join(dir, 'deploy.sh'), `#!/bin/sh\nexport AWS_ACCESS_KEY_ID=${key}\n`),
    );
    expect(out.pushed).toBe(false);
    if (out.pushed) return;
    expect(out.message).toContain('deploy.sh:2 (aws_access_key_id');
    expect(out.message).not.toContain(key);
    expect(remoteBranch(world.remote, 'autodev/tsk_leak')).toBeUndefined();
    expect(world.git.requests.some((r) => r.service === 'git-receive-pack' && r.method === 'POST')).toBe(
      false,
    );
    expect(world.forge.pulls).toEqual([]);
  });

  it('the HTTP remote refuses a client without credentials', async () => {
    world = await startWorld({ 'README.md': '# shop\n' });
    const anonymous = world.git.urlFor('acme/shop.git');
    const err = await git(['ls-remote', anonymous]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(world.git.requests.at(-1)?.status).toBe(401);
  });
});
