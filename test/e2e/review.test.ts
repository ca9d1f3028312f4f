import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import { type ForgeServer, startForgeServer } from '../support/forge-server.js';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/**
 * The review agent through the real local server: a repository over git's smart HTTP protocol whose
 * `.autodev.yml` asks for a review by codex, its host configured as a GitHub forge (the local fake
 * GitHub), the fake claude as the task's agent and the fake codex as the reviewer.
 */

const FORGE_TOKEN = 'ghe_token_for_the_review_test';

describe('the review agent through the local platform (real server, fake GitHub)', () => {
  let dir: string;
  let srv: string;
  let git: GitHttpServer;
  let forge: ForgeServer;
  let server: RunningServer;
  let token: string;
  let repoUrl: string;

  const remoteBranch = (branch: string) => {
    try {
      return gitIn(join(srv, 'acme/reviewed.git'), [
        'rev-parse',
        '--verify',
        '--quiet',
        `refs/heads/${branch}`,
      ]).trim();
    } catch {
      return undefined;
    }
  };
  const api = async (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    });
  const ended = (id: string) =>
    until(
      async () => {
        const t = (await (await api(`/v1/tasks/${id}`)).json()) as Task;
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
      },
      30_000,
      `task ${id} to end`,
    );

  beforeAll(async () => {
    dir = tempDir('autodev-review-e2e-');
    srv = join(dir, 'srv');
    mkdirSync(join(srv, 'acme'), { recursive: true });
    const scratch = join(dir, 'reviewed');
    mkdirSync(scratch);
    const made = makeRemote(scratch, {
      'README.md': '# reviewed\n',
      '.autodev.yml': 'review:\n  provider: codex\n  rounds: 1\n',
    });
    gitIn(dir, ['clone', '--quiet', '--bare', made, join(srv, 'acme/reviewed.git')]);
    git = await startGitHttpServer({ root: srv });
    forge = await startForgeServer({
      tokens: [FORGE_TOKEN],
      branchExists: (repoPath, branch) => repoPath === 'acme/reviewed' && remoteBranch(branch) !== undefined,
    });
    repoUrl = git.urlFor('acme/reviewed.git');
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(
      join(home, 'forges.yaml'),
      `forges:\n  - host: "${new URL(repoUrl).host}"\n    kind: github\n    apiBaseUrl: ${forge.githubApi}\n    tokenSecret: GHE_TOKEN\n`,
    );
    writeFileSync(join(home, 'secrets.env'), `GHE_TOKEN=${FORGE_TOKEN}\n`, { mode: 0o600 });
    // the reviewer's credentials reach it as every provider's do: from the server's environment
    server = await startServer(platformEnv(home, { CODEX_API_KEY: 'codex-key-for-the-review-test' }));
    const minted = await cli(['token', '--tenant', 'acme', '--role', 'submitter'], server.env);
    expect(minted.code).toBe(0);
    token = minted.stdout.trim();
  });

  afterAll(async () => {
    await server?.stop();
    await git?.close();
    await forge?.close();
    expect(forge?.violations ?? []).toEqual([]);
  });

  it('codex reviews what claude did; the pull request on the forge receives the review, the task records it', async () => {
    // Act
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({
        repo: repoUrl,
        prompt: 'Write the release notes [fake:edit=RELEASE.md] [fake:review=approve]',
        provider: 'claude',
      }),
    });
    expect(res.status).toBe(201);
    const task = await ended(((await res.json()) as Task).id);

    // Assert
    expect(task).toMatchObject({ status: 'succeeded', provider: 'claude', branch: `autodev/${task.id}` });
    expect(remoteBranch(`autodev/${task.id}`)).toBe(task.commit);
    expect(task.review).toEqual({
      provider: 'codex',
      verdict: 'approve',
      summary: 'The change does what the task asks; RELEASE.md reads well.',
      comments: [{ path: 'RELEASE.md', line: 1, body: 'Looks good.' }],
    });
    const pull = forge.pulls.find((p) => p.head === `autodev/${task.id}`);
    expect(task.pullRequest?.url).toBe(`${forge.url}/acme/reviewed/pull/${pull?.number}`);
    expect(pull?.reviews).toEqual([
      {
        event: 'APPROVE',
        body: 'The change does what the task asks; RELEASE.md reads well.',
        comments: [{ path: 'RELEASE.md', line: 1, side: 'RIGHT', body: 'Looks good.' }],
      },
    ]);
    expect(pull?.body).toContain('**Approved** by the review agent.');
    // the reviewer's tokens count: claude's 17,204 in, codex's 9,120
    expect(task.usage.inputTokens).toBe(17_204 + 9_120);
    const logs = await (await api(`/v1/tasks/${task.id}/logs`)).text();
    expect(logs).toContain('review: starting codex');
    expect(logs).toContain('review by codex: approve with 1 comment(s)');
  });

  it('a request for changes goes back to claude once (rounds: 1); the second review approves and is the one posted', async () => {
    // Arrange: the fake reviewer requests changes the first time (it marks that in a file in the
    // attempt's HOME, outside the repository: the only place besides it that the sandbox lets it write)
    const state = '~/requested-once';

    // Act
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({
        repo: repoUrl,
        prompt: `Write the upgrade guide [fake:edit=UPGRADE.md] [fake:revise=REVISED.md] [fake:review=request_changes_once:${state}]`,
        provider: 'claude',
      }),
    });
    expect(res.status).toBe(201);
    const task = await ended(((await res.json()) as Task).id);

    // Assert
    expect(task.status).toBe('succeeded');
    expect(task.attempts).toHaveLength(1);
    expect(task.review).toMatchObject({ provider: 'codex', verdict: 'approve' });
    const changed = gitIn(join(srv, 'acme/reviewed.git'), [
      'diff',
      '--name-only',
      `${task.commit}~1`,
      task.commit as string,
    ]);
    expect(changed.trim().split('\n').sort()).toEqual(['REVISED.md', 'UPGRADE.md']);
    expect(gitIn(join(srv, 'acme/reviewed.git'), ['show', `${task.commit}:REVISED.md`])).toContain(
      'Add a test that covers UPGRADE.md.',
    );
    const pull = forge.pulls.find((p) => p.head === `autodev/${task.id}`);
    expect(pull?.reviews.map((r) => r.event)).toEqual(['APPROVE']);
    const logs = await (await api(`/v1/tasks/${task.id}/logs`)).text();
    expect(logs).toContain('review by codex: request_changes with 1 comment(s)');
    expect(logs).toContain('review round 1: starting claude with the review comments');
  });
});
