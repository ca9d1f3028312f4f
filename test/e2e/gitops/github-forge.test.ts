import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Octokit } from '@octokit/rest';
import { ForgeError, GitHubForge, type PullRequestRequest } from '../../../lib/worker/forge/index.js';
import { type ForgeServer, GITHUB_ROUTES, startForgeServer } from '../../support/forge-server.js';

const TOKEN = 'ghp_test_token_for_the_fake_forge';
const servers: ForgeServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    expect(s.violations).toEqual([]);
    await s.close();
  }
});

async function forgeServer(opts: Parameters<typeof startForgeServer>[0] = {}) {
  const s = await startForgeServer({ tokens: [TOKEN], ...opts });
  servers.push(s);
  return s;
}

const request = (over: Partial<PullRequestRequest> = {}): PullRequestRequest => ({
  repo: 'https://github.com/acme/shop.git',
  branch: 'autodev/tsk_1',
  base: 'main',
  title: 'AutoDev: add rate limiting',
  body: 'first body',
  labels: ['autodev'],
  draft: true,
  ...over,
});

describe('GitHubForge against the GitHub REST routes', () => {
  it('opens a draft pull request with labels, keyed by branch', async () => {
    // Arrange
    const server = await forgeServer();
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: TOKEN } });

    // Act
    const pr = await forge.findOrCreatePullRequest(request());

    // Assert
    expect(pr).toEqual({ url: `${server.url}/acme/shop/pull/1`, number: 1, created: true });
    expect(server.pulls).toHaveLength(1);
    expect(server.pulls[0]).toMatchObject({
      head: 'autodev/tsk_1',
      base: 'main',
      draft: true,
      title: 'AutoDev: add rate limiting',
      body: 'first body',
      labels: ['autodev'],
    });
  });

  it('updates the open pull request of the branch on a retry instead of opening another', async () => {
    // Arrange
    const server = await forgeServer();
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: TOKEN } });
    const first = await forge.findOrCreatePullRequest(request());

    // Act
    const second = await forge.findOrCreatePullRequest(
      request({
        title: 'AutoDev: add rate limiting (attempt 2)',
        body: 'second body',
        labels: ['autodev', 'gates-failed'],
      }),
    );

    // Assert
    expect(second).toEqual({ url: first.url, number: first.number, created: false });
    expect(server.pulls).toHaveLength(1);
    expect(server.pulls[0]).toMatchObject({
      title: 'AutoDev: add rate limiting (attempt 2)',
      body: 'second body',
      labels: ['autodev', 'gates-failed'],
    });
    expect(server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/pulls'))).toHaveLength(1);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
  });

  it('turns the draft into a ready pull request when a later attempt passes its gates, and back', async () => {
    const server = await forgeServer();
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: TOKEN } });
    await forge.findOrCreatePullRequest(request({ draft: true }));
    await forge.findOrCreatePullRequest(request({ draft: false }));
    expect(server.pulls[0]?.draft).toBe(false);
    await forge.findOrCreatePullRequest(request({ draft: true }));
    expect(server.pulls[0]?.draft).toBe(true);
    await forge.findOrCreatePullRequest(request({ draft: true }));
    expect(server.requests.filter((r) => r.path === '/api/graphql')).toHaveLength(2);
  });

  it('comments and posts reviews with line comments', async () => {
    // Arrange
    const server = await forgeServer();
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: TOKEN } });
    const { number } = await forge.findOrCreatePullRequest(request());

    // Act
    await forge.comment({ repo: request().repo, number, body: 'Gates passed.' });
    await forge.postReview({
      repo: request().repo,
      number,
      verdict: 'request_changes',
      summary: 'The window never resets.',
      comments: [{ path: 'src/limits.ts', line: 42, body: 'Reset here.' }],
    });

    // Assert
    expect(server.pulls[0]?.comments).toEqual(['Gates passed.']);
    expect(server.pulls[0]?.reviews).toEqual([
      {
        event: 'REQUEST_CHANGES',
        body: 'The window never resets.',
        comments: [{ path: 'src/limits.ts', line: 42, side: 'RIGHT', body: 'Reset here.' }],
      },
    ]);
  });

  it('falls back to a comment review when GitHub refuses a verdict on its own pull request', async () => {
    const server = await forgeServer({ ownPullRequests: true });
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: TOKEN } });
    const { number } = await forge.findOrCreatePullRequest(request());
    await forge.postReview({
      repo: request().repo,
      number,
      verdict: 'approve',
      summary: 'Fine.',
      comments: [],
    });
    expect(server.pulls[0]?.reviews).toEqual([
      { event: 'COMMENT', body: '**Approve.** Fine.', comments: [] },
    ]);
  });

  it('fails with a ForgeError that carries the status, and without the token', async () => {
    const server = await forgeServer();
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: 'wrong-token' } });
    const err = await forge.findOrCreatePullRequest(request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeError);
    expect(err).toMatchObject({ status: 401, message: expect.stringContaining('HTTP 401') });
    expect(String((err as Error).message)).not.toContain('wrong-token');
  });

  it('refuses a pull request from a branch that was not pushed', async () => {
    const server = await forgeServer({ branchExists: () => false });
    const forge = new GitHubForge({ apiBaseUrl: server.githubApi, auth: { token: TOKEN } });
    await expect(forge.findOrCreatePullRequest(request())).rejects.toMatchObject({ status: 422 });
    expect(server.pulls).toEqual([]);
  });
});

describe('GitHubForge as a GitHub App installation', () => {
  it('signs a JWT, gets an installation token once, and uses it for every call', async () => {
    // Arrange
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const server = await forgeServer({
      tokens: [],
      app: {
        appId: '4242',
        installationId: '99',
        publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      },
    });
    const forge = new GitHubForge({
      apiBaseUrl: server.githubApi,
      auth: {
        appId: 4242,
        installationId: 99,
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });

    // Act
    const pr = await forge.findOrCreatePullRequest(request());
    await forge.comment({ repo: request().repo, number: pr.number, body: 'hello' });

    // Assert
    expect(pr.created).toBe(true);
    expect(server.issuedTokens).toHaveLength(1);
    expect(server.requests.filter((r) => r.path.includes('/access_tokens'))).toHaveLength(1);
    expect(server.pulls[0]?.comments).toEqual(['hello']);
  });

  it('cannot get a token with the wrong key', async () => {
    const right = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrong = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const server = await forgeServer({
      tokens: [],
      app: {
        appId: '4242',
        installationId: '99',
        publicKeyPem: right.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      },
    });
    const forge = new GitHubForge({
      apiBaseUrl: server.githubApi,
      auth: {
        appId: 4242,
        installationId: 99,
        privateKey: wrong.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
    await expect(forge.findOrCreatePullRequest(request())).rejects.toBeInstanceOf(ForgeError);
    expect(server.issuedTokens).toEqual([]);
    expect(server.pulls).toEqual([]);
  });
});

describe('the fake GitHub', () => {
  it('serves exactly the routes that Octokit sends for the calls the adapter makes', () => {
    const octokit = new Octokit();
    const used = [
      octokit.rest.pulls.list,
      octokit.rest.pulls.create,
      octokit.rest.pulls.update,
      octokit.rest.issues.addLabels,
      octokit.rest.issues.createComment,
      octokit.rest.pulls.createReview,
      octokit.rest.apps.createInstallationAccessToken,
    ].map((m) => `${m.endpoint.DEFAULTS.method} ${m.endpoint.DEFAULTS.url}`);
    expect(used).toEqual(GITHUB_ROUTES.map((r) => `${r.method} ${r.path}`));
  });
});
