import { parseRepoUrl } from './repo-url.js';
import {
  type CommentRequest,
  ForgeError,
  type ForgePort,
  type PullRequestRef,
  type PullRequestRequest,
  type ReviewRequest,
} from './types.js';

export interface GitLabForgeOptions {
  /** `https://gitlab.com/api/v4`, or `https://HOST/api/v4` for a self-managed GitLab. */
  apiBaseUrl: string;
  /** A personal, group or project access token with the `api` scope. */
  token: string;
  fetch?: typeof fetch;
  /** Time limit of one request. Default 30 s. */
  timeoutMs?: number;
}

interface MergeRequest {
  iid: number;
  web_url: string;
  diff_refs?: { base_sha: string; head_sha: string; start_sha: string } | null;
}

/** Merge requests on gitlab.com and self-managed GitLab through the REST API v4. */
export class GitLabForge implements ForgePort {
  readonly kind = 'gitlab' as const;
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly opts: GitLabForgeOptions) {
    this.base = opts.apiBaseUrl.replace(/\/+$/, '');
    this.fetch = opts.fetch ?? fetch;
  }

  async findOrCreatePullRequest(req: PullRequestRequest): Promise<PullRequestRef> {
    const project = this.project(req.repo);
    const title = req.draft ? `Draft: ${req.title}` : req.title;
    const existing = await this.openMergeRequestFor(project, req.branch);
    if (existing) return this.update(project, existing, req, title);
    const created = await this.call<MergeRequest>(
      'POST',
      `/projects/${project}/merge_requests`,
      {
        source_branch: req.branch,
        target_branch: req.base,
        title,
        description: req.body,
        labels: req.labels.join(','),
      },
      [409],
    );
    if (created) return { url: created.web_url, number: created.iid, created: true };
    // 409: a concurrent attempt opened it between our look-up and our create
    const raced = await this.openMergeRequestFor(project, req.branch);
    if (!raced)
      throw new ForgeError('GitLab: the merge request conflicts with one that cannot be found.', 409);
    return this.update(project, raced, req, title);
  }

  async comment(req: CommentRequest): Promise<void> {
    const project = this.project(req.repo);
    await this.call('POST', `/projects/${project}/merge_requests/${req.number}/notes`, { body: req.body });
  }

  async postReview(req: ReviewRequest): Promise<void> {
    const project = this.project(req.repo);
    const mrPath = `/projects/${project}/merge_requests/${req.number}`;
    if (req.comments.length > 0) {
      const mr = await this.call<MergeRequest>('GET', mrPath);
      const refs = mr?.diff_refs;
      for (const c of req.comments) {
        if (!refs) {
          await this.call('POST', `${mrPath}/notes`, { body: `\`${c.path}:${c.line}\`: ${c.body}` });
          continue;
        }
        await this.call('POST', `${mrPath}/discussions`, {
          body: c.body,
          position: {
            position_type: 'text',
            base_sha: refs.base_sha,
            start_sha: refs.start_sha,
            head_sha: req.commit ?? refs.head_sha,
            old_path: c.path,
            new_path: c.path,
            new_line: c.line,
          },
        });
      }
    }
    const verdict = req.verdict === 'approve' ? 'Approve' : 'Request changes';
    await this.call('POST', `${mrPath}/notes`, { body: `**${verdict}.** ${req.summary}` });
    if (req.verdict === 'approve') {
      // approving one's own merge request may be forbidden by the project's rules: the note stands
      await this.call('POST', `${mrPath}/approve`, {}, [401, 403, 405]);
    }
  }

  private project(repoUrl: string): string {
    const loc = parseRepoUrl(repoUrl);
    if (!loc) throw new ForgeError(`"${repoUrl}" is not a repository URL on a forge.`);
    return encodeURIComponent(loc.path);
  }

  private async openMergeRequestFor(project: string, branch: string): Promise<MergeRequest | undefined> {
    const q = new URLSearchParams({ state: 'opened', source_branch: branch, per_page: '1' });
    const list = await this.call<MergeRequest[]>('GET', `/projects/${project}/merge_requests?${q}`);
    return list?.[0];
  }

  private async update(
    project: string,
    mr: MergeRequest,
    req: PullRequestRequest,
    title: string,
  ): Promise<PullRequestRef> {
    const body: Record<string, unknown> = { title, description: req.body, target_branch: req.base };
    if (req.labels.length > 0) body.add_labels = req.labels.join(',');
    const updated = await this.call<MergeRequest>(
      'PUT',
      `/projects/${project}/merge_requests/${mr.iid}`,
      body,
    );
    return { url: updated?.web_url ?? mr.web_url, number: mr.iid, created: false };
  }

  /** One REST call; statuses in `tolerated` give undefined instead of an error. */
  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    tolerated: number[] = [],
  ): Promise<T | undefined> {
    let res: Response;
    try {
      res = await this.fetch(`${this.base}${path}`, {
        method,
        headers: {
          'private-token': this.opts.token,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new ForgeError(`GitLab: ${method} ${path.split('?')[0]} failed: ${(err as Error).message}`);
    }
    if (tolerated.includes(res.status)) return undefined;
    const text = await res.text();
    if (!res.ok) {
      throw new ForgeError(
        `GitLab: ${method} ${path.split('?')[0]} answered HTTP ${res.status}: ${gitlabMessage(text)}`,
        res.status,
      );
    }
    return text ? (JSON.parse(text) as T) : undefined;
  }
}

function gitlabMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
    const m = parsed.message ?? parsed.error;
    return (typeof m === 'string' ? m : JSON.stringify(m)).slice(0, 500);
  } catch {
    return text.slice(0, 500);
  }
}
