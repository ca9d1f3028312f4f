/** Pull requests (GitHub) and merge requests (GitLab) behind one port. */

export type ForgeKind = 'github' | 'gitlab';

export interface PullRequestRequest {
  /** The repository's git URL (https or ssh), as the task names it. */
  repo: string;
  /** The task's branch, already pushed: the key of the pull request. */
  branch: string;
  /** The branch the pull request merges into. */
  base: string;
  title: string;
  body: string;
  labels: readonly string[];
  draft: boolean;
}

export interface PullRequestRef {
  /** The web page of the pull request. */
  url: string;
  number: number;
  /** False when an open pull request for the branch existed and was updated instead. */
  created: boolean;
}

export interface CommentRequest {
  repo: string;
  number: number;
  body: string;
}

export interface ReviewComment {
  path: string;
  line: number;
  body: string;
}

export interface ReviewRequest {
  repo: string;
  number: number;
  verdict: 'approve' | 'request_changes';
  summary: string;
  comments: readonly ReviewComment[];
  /** The commit the review is about; the head of the pull request when absent. */
  commit?: string;
}

export interface ForgePort {
  readonly kind: ForgeKind;
  /**
   * Opens a pull request from `branch` into `base`, or, when an open one for `branch` exists,
   * updates its title, body, base and labels. Repeating the call never makes a second one.
   */
  findOrCreatePullRequest(req: PullRequestRequest): Promise<PullRequestRef>;
  /** A plain comment on the pull request's conversation. */
  comment(req: CommentRequest): Promise<void>;
  /** A review: the verdict with its summary, and comments on lines of the change. */
  postReview(req: ReviewRequest): Promise<void>;
}

/** A forge answered with an error, or could not be reached. */
export class ForgeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ForgeError';
  }
}
