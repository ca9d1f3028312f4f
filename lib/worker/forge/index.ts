export { type GitHubAuth, GitHubForge, type GitHubForgeOptions } from './github.js';
export { GitLabForge, type GitLabForgeOptions } from './gitlab.js';
export { type PullRequestLinks, pullRequestTitle, renderPullRequestBody } from './pr-body.js';
export {
  GATES_FAILED_LABEL,
  PULL_REQUEST_LABEL,
  type PublishInput,
  type PublishResult,
  publishPullRequest,
} from './publish.js';
export { githubOwnerRepo, parseRepoUrl, type RepoLocation } from './repo-url.js';
export {
  DEFAULT_FORGES,
  ForgeConfig,
  ForgeEntry,
  forgeEntryFor,
  type ResolveForgeOptions,
  resolveForge,
} from './resolve.js';
export * from './types.js';
