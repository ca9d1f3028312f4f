import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { githubOwnerRepo, parseRepoUrl } from './repo-url.js';
import {
  type CommentRequest,
  ForgeError,
  type ForgePort,
  type PullRequestRef,
  type PullRequestRequest,
  type ReviewRequest,
} from './types.js';

/** A personal access token or fine-grained token, or a GitHub App installation. */
export type GitHubAuth =
  | { token: string }
  | {
      appId: number | string;
      /** The App's private key (PEM, PKCS#1 or PKCS#8). */
      privateKey: string;
      installationId: number | string;
    };

export interface GitHubForgeOptions {
  /** `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server. */
  apiBaseUrl: string;
  auth: GitHubAuth;
  /** For tests and proxies. */
  fetch?: typeof fetch;
}

const USER_AGENT = 'autodev-forge';

/** Pull requests on GitHub and GitHub Enterprise Server through the REST API (`@octokit/rest`). */
export class GitHubForge implements ForgePort {
  readonly kind = 'github' as const;
  private readonly octokit: Octokit;

  constructor(opts: GitHubForgeOptions) {
    const request = opts.fetch ? { fetch: opts.fetch } : undefined;
    const baseUrl = opts.apiBaseUrl.replace(/\/+$/, '');
    this.octokit =
      'token' in opts.auth
        ? new Octokit({ baseUrl, auth: opts.auth.token, userAgent: USER_AGENT, request, log: quietLog })
        : new Octokit({
            baseUrl,
            userAgent: USER_AGENT,
            request,
            log: quietLog,
            // installation tokens are made (POST /app/installations/{id}/access_tokens) and cached by auth-app
            authStrategy: createAppAuth,
            auth: {
              appId: opts.auth.appId,
              privateKey: opts.auth.privateKey,
              installationId: opts.auth.installationId,
            },
          });
  }

  async findOrCreatePullRequest(req: PullRequestRequest): Promise<PullRequestRef> {
    const { owner, repo } = this.locate(req.repo);
    return wrap('open the pull request', async () => {
      const existing = await this.openPullFor(owner, repo, req.branch);
      if (existing) return this.update(owner, repo, existing, req);
      try {
        const { data } = await this.octokit.rest.pulls.create({
          owner,
          repo,
          head: req.branch,
          base: req.base,
          title: req.title,
          body: req.body,
          draft: req.draft,
        });
        await this.addLabels(owner, repo, data.number, req.labels);
        return { url: data.html_url, number: data.number, created: true };
      } catch (err) {
        // a concurrent attempt opened it between our look-up and our create: update that one
        if (statusOf(err) !== 422) throw err;
        const raced = await this.openPullFor(owner, repo, req.branch);
        if (!raced) throw err;
        return this.update(owner, repo, raced, req);
      }
    });
  }

  async comment(req: CommentRequest): Promise<void> {
    const { owner, repo } = this.locate(req.repo);
    await wrap('comment on the pull request', () =>
      this.octokit.rest.issues.createComment({ owner, repo, issue_number: req.number, body: req.body }),
    );
  }

  async postReview(req: ReviewRequest): Promise<void> {
    const { owner, repo } = this.locate(req.repo);
    const base = {
      owner,
      repo,
      pull_number: req.number,
      body: req.summary,
      commit_id: req.commit,
      comments: req.comments.map((c) => ({
        path: c.path,
        line: c.line,
        side: 'RIGHT' as const,
        body: c.body,
      })),
    };
    await wrap('post the review', async () => {
      try {
        await this.octokit.rest.pulls.createReview({
          ...base,
          event: req.verdict === 'approve' ? 'APPROVE' : 'REQUEST_CHANGES',
        });
      } catch (err) {
        // GitHub refuses approving or requesting changes on a pull request the token's owner opened:
        // the verdict then goes in the body of a plain review
        if (statusOf(err) !== 422) throw err;
        const verdict = req.verdict === 'approve' ? 'Approve' : 'Request changes';
        await this.octokit.rest.pulls.createReview({
          ...base,
          body: `**${verdict}.** ${req.summary}`,
          event: 'COMMENT',
        });
      }
    });
  }

  private locate(repoUrl: string): { owner: string; repo: string } {
    const loc = parseRepoUrl(repoUrl);
    if (!loc) throw new ForgeError(`"${repoUrl}" is not a repository URL on a forge.`);
    return githubOwnerRepo(loc);
  }

  private async openPullFor(owner: string, repo: string, branch: string): Promise<OpenPull | undefined> {
    const { data } = await this.octokit.rest.pulls.list({
      owner,
      repo,
      head: `${owner}:${branch}`,
      state: 'open',
      per_page: 1,
    });
    return data[0];
  }

  private async update(
    owner: string,
    repo: string,
    pull: OpenPull,
    req: PullRequestRequest,
  ): Promise<PullRequestRef> {
    const { data } = await this.octokit.rest.pulls.update({
      owner,
      repo,
      pull_number: pull.number,
      title: req.title,
      body: req.body,
      base: req.base,
    });
    await this.addLabels(owner, repo, pull.number, req.labels);
    if (pull.draft !== undefined && pull.draft !== req.draft && pull.node_id) {
      // the REST API cannot change the draft state; GraphQL can (at /api/graphql on Enterprise Server)
      const mutation = req.draft ? 'convertPullRequestToDraft' : 'markPullRequestReadyForReview';
      await this.octokit.graphql(
        `mutation($id: ID!) { ${mutation}(input: { pullRequestId: $id }) { pullRequest { isDraft } } }`,
        { id: pull.node_id },
      );
    }
    return { url: data.html_url, number: data.number, created: false };
  }

  private async addLabels(owner: string, repo: string, number: number, labels: readonly string[]) {
    if (labels.length === 0) return;
    await this.octokit.rest.issues.addLabels({ owner, repo, issue_number: number, labels: [...labels] });
  }
}

interface OpenPull {
  number: number;
  html_url: string;
  node_id?: string;
  draft?: boolean;
}

const quietLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' ? status : undefined;
}

async function wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ForgeError) throw err;
    const status = statusOf(err);
    const detail = err instanceof Error ? err.message : String(err);
    throw new ForgeError(`GitHub: could not ${what}${status ? ` (HTTP ${status})` : ''}: ${detail}`, status);
  }
}
