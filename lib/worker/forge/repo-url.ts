import { ForgeError } from './types.js';

/** Where a repository lives: the forge's host and the repository's path on it. */
export interface RepoLocation {
  /** Host name, with a port when the URL has one (`ghe.example.com`, `127.0.0.1:8080`). */
  host: string;
  /** `owner/name` on GitHub; `group/subgroup/project` on GitLab. No `.git`. */
  path: string;
}

const SCP_LIKE = /^[\w.-]+@([\w.-]+):(?!\/\/)(.+)$/;

/**
 * Reads the host and path of a git URL: `https://host/owner/repo(.git)`, `ssh://git@host[:port]/owner/repo.git`
 * and `git@host:owner/repo.git`. Local paths and `file://` URLs have no forge: undefined.
 */
export function parseRepoUrl(repo: string): RepoLocation | undefined {
  const trimmed = repo.trim();
  const scp = trimmed.match(SCP_LIKE);
  let host: string;
  let rawPath: string;
  if (scp) {
    host = scp[1] as string;
    rawPath = scp[2] as string;
  } else {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      return undefined;
    }
    if (!['https:', 'http:', 'ssh:', 'git+ssh:'].includes(url.protocol)) return undefined;
    // ssh ports are not the forge's web port: keep the port for http(s) only
    host = url.protocol.startsWith('http') ? url.host : url.hostname;
    rawPath = decodeURIComponent(url.pathname);
  }
  const path = rawPath
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  if (!host || !path.includes('/') || path.split('/').some((part) => !part || part === '..'))
    return undefined;
  return { host: host.toLowerCase(), path };
}

/** `owner` and `repo` of a GitHub path. */
export function githubOwnerRepo(loc: RepoLocation): { owner: string; repo: string } {
  const parts = loc.path.split('/');
  if (parts.length !== 2) {
    throw new ForgeError(`"${loc.path}" is not a GitHub repository path (owner/name).`);
  }
  return { owner: parts[0] as string, repo: parts[1] as string };
}
