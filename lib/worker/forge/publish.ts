import type { Task } from '../../core/schemas.js';
import type { GateResult } from '../gates.js';
import type { ReviewVerdict } from '../review.js';
import { pullRequestTitle, renderPullRequestBody } from './pr-body.js';
import { type ForgeEntry, resolveForge } from './resolve.js';
import { ForgeError, type PullRequestRef } from './types.js';

/** Labels put on every pull request AutoDev opens, and on those whose gates still fail. */
export const PULL_REQUEST_LABEL = 'autodev';
export const GATES_FAILED_LABEL = 'autodev:gates-failed';

export interface PublishInput {
  /** The task as it will be recorded: summary, attempts, usage and commit filled in. */
  task: Task;
  /** The pushed task branch. */
  branch: string;
  /** The branch it merges into (the workspace's base branch). */
  base: string;
  gates: readonly GateResult[];
  /** From `.autodev.yml`: a pull request whose gates fail is opened as a draft. */
  draftOnFailure: boolean;
  review?: ReviewVerdict;
  forges: readonly ForgeEntry[];
  secrets: Readonly<Record<string, string | undefined>>;
  logsUrl?: string;
  fetch?: typeof fetch;
  log?: (line: string) => void;
  /** Replaces the platform's secrets in what is sent to the forge (the description, the review). */
  redact?: (text: string) => string;
}

export type PublishResult =
  | { outcome: 'opened' | 'updated'; pullRequest: PullRequestRef; reviewPosted?: boolean }
  /** The repository is on no known forge: the branch is the result. */
  | { outcome: 'no_forge' }
  /** The forge refused or could not be reached, or its credentials are missing. */
  | { outcome: 'failed'; message: string };

/**
 * Opens the task's pull request, or updates the one already open for its branch, and posts the
 * review when there is one. Never throws: a forge being down must not undo a pushed branch.
 */
export async function publishPullRequest(input: PublishInput): Promise<PublishResult> {
  const { task, log } = input;
  const red = input.redact ?? ((text: string) => text);
  try {
    const forge = resolveForge(task.repo, input.forges, input.secrets, { fetch: input.fetch });
    if (!forge) {
      log?.('the repository is on no known forge: no pull request, the branch is the result');
      return { outcome: 'no_forge' };
    }
    const gatesOk = input.gates.every((g) => g.ok);
    const draft = !gatesOk && input.draftOnFailure;
    const pullRequest = await forge.findOrCreatePullRequest({
      repo: task.repo,
      branch: input.branch,
      base: input.base,
      title: pullRequestTitle(task),
      body: red(renderPullRequestBody(task, input.gates, input.review, { logsUrl: input.logsUrl })),
      labels: gatesOk ? [PULL_REQUEST_LABEL] : [PULL_REQUEST_LABEL, GATES_FAILED_LABEL],
      draft,
    });
    log?.(
      `${pullRequest.created ? 'opened' : 'updated'} ${draft ? 'draft ' : ''}pull request #${pullRequest.number}: ${pullRequest.url}`,
    );
    let reviewPosted: boolean | undefined;
    if (input.review) {
      reviewPosted = await forge
        .postReview({
          repo: task.repo,
          number: pullRequest.number,
          verdict: input.review.verdict,
          summary: red(input.review.summary),
          comments: input.review.comments.map((c) => ({ ...c, body: red(c.body) })),
          commit: task.commit,
        })
        .then(() => true)
        .catch((err: unknown) => {
          log?.(`the review could not be posted: ${(err as Error).message}`);
          return false;
        });
    }
    return { outcome: pullRequest.created ? 'opened' : 'updated', pullRequest, reviewPosted };
  } catch (err) {
    const message = err instanceof ForgeError || err instanceof Error ? err.message : String(err);
    log?.(`no pull request: ${message}`);
    return { outcome: 'failed', message };
  }
}
