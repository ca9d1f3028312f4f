import { afterEach, describe, expect, it } from '@jest/globals';
import { ForgeError, GitLabForge, type PullRequestRequest } from '../../../lib/worker/forge/index.js';
import { type ForgeServer, startForgeServer } from '../../support/forge-server.js';

const TOKEN = 'glpat-test-token-for-the-fake';
const servers: ForgeServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    expect(s.violations).toEqual([]);
    await s.close();
  }
});

async function setup(opts: Parameters<typeof startForgeServer>[0] = {}) {
  const server = await startForgeServer({ tokens: [TOKEN], ...opts });
  servers.push(server);
  return { server, forge: new GitLabForge({ apiBaseUrl: server.gitlabApi, token: TOKEN }) };
}

const request = (over: Partial<PullRequestRequest> = {}): PullRequestRequest => ({
  repo: 'git@gitlab.example.com:platform/backend/orders.git',
  branch: 'autodev/tsk_9',
  base: 'main',
  title: 'AutoDev: add rate limiting',
  body: 'first body',
  labels: ['autodev', 'backend'],
  draft: true,
  ...over,
});

describe('GitLabForge against the GitLab REST v4 routes', () => {
  it('opens a draft merge request in a subgroup project, with labels', async () => {
    // Arrange
    const { server, forge } = await setup();

    // Act
    const mr = await forge.findOrCreatePullRequest(request());

    // Assert
    expect(mr).toEqual({
      url: `${server.url}/platform/backend/orders/-/merge_requests/1`,
      number: 1,
      created: true,
    });
    expect(server.mergeRequests[0]).toMatchObject({
      project: 'platform/backend/orders',
      title: 'Draft: AutoDev: add rate limiting',
      description: 'first body',
      source_branch: 'autodev/tsk_9',
      target_branch: 'main',
      labels: ['autodev', 'backend'],
    });
    expect(server.requests[0]?.path).toContain('/projects/platform%2Fbackend%2Forders/merge_requests?');
  });

  it('updates the open merge request of the branch on a retry, and marks it ready when no longer a draft', async () => {
    const { server, forge } = await setup();
    const first = await forge.findOrCreatePullRequest(request());
    const second = await forge.findOrCreatePullRequest(
      request({ body: 'second body', draft: false, labels: ['gates-passed'] }),
    );
    expect(second).toEqual({ url: first.url, number: first.number, created: false });
    expect(server.mergeRequests).toHaveLength(1);
    expect(server.mergeRequests[0]).toMatchObject({
      title: 'AutoDev: add rate limiting',
      description: 'second body',
      labels: ['autodev', 'backend', 'gates-passed'],
    });
  });

  it('comments, and reviews with line discussions, a verdict note and an approval', async () => {
    // Arrange
    const { server, forge } = await setup();
    const { number } = await forge.findOrCreatePullRequest(request());

    // Act
    await forge.comment({ repo: request().repo, number, body: 'Gates passed.' });
    await forge.postReview({
      repo: request().repo,
      number,
      verdict: 'approve',
      summary: 'Looks right.',
      comments: [{ path: 'src/limits.ts', line: 7, body: 'Nice.' }],
    });

    // Assert
    const mr = server.mergeRequests[0];
    expect(mr?.notes).toEqual(['Gates passed.', '**Approve.** Looks right.']);
    expect(mr?.discussions).toEqual([
      {
        body: 'Nice.',
        position: {
          position_type: 'text',
          base_sha: 'a'.repeat(40),
          start_sha: 'a'.repeat(40),
          head_sha: 'b'.repeat(40),
          old_path: 'src/limits.ts',
          new_path: 'src/limits.ts',
          new_line: 7,
        },
      },
    ]);
    expect(mr?.approved).toBe(true);
  });

  it('keeps the verdict note when approving is not allowed', async () => {
    const { server, forge } = await setup({ ownPullRequests: true });
    const { number } = await forge.findOrCreatePullRequest(request());
    await forge.postReview({
      repo: request().repo,
      number,
      verdict: 'approve',
      summary: 'Fine.',
      comments: [],
    });
    expect(server.mergeRequests[0]?.notes).toEqual(['**Approve.** Fine.']);
    expect(server.mergeRequests[0]?.approved).toBe(false);
  });

  it('fails with a ForgeError carrying the status for a bad token', async () => {
    const { server } = await setup();
    const forge = new GitLabForge({ apiBaseUrl: server.gitlabApi, token: 'nope' });
    const err = await forge.findOrCreatePullRequest(request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeError);
    expect(err).toMatchObject({ status: 401 });
    expect((err as ForgeError).message).not.toContain('nope');
  });

  it('fails with a ForgeError when the server cannot be reached', async () => {
    const forge = new GitLabForge({ apiBaseUrl: 'http://127.0.0.1:9/api/v4', token: TOKEN, timeoutMs: 2000 });
    await expect(forge.comment({ repo: request().repo, number: 1, body: 'x' })).rejects.toBeInstanceOf(
      ForgeError,
    );
  });
});
