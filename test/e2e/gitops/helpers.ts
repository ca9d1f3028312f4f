import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GitWorkspaces } from '../../../lib/worker/workspace.js';
import { type ForgeServer, startForgeServer } from '../../support/forge-server.js';
import { type GitHttpServer, startGitHttpServer } from '../../support/git-http-server.js';
import { gitIn, makeRemote, tempDir } from '../../support/local-platform.js';

export const FORGE_TOKEN = 'ghe_token_for_the_local_forge';
export const GIT_USER = { username: 'autodev', password: 'push-secret' };

export interface GitOpsWorld {
  dir: string;
  /** The bare repository behind the HTTP remote. */
  remote: string;
  git: GitHttpServer;
  forge: ForgeServer;
  /** Clone URL with credentials, as a task names it. */
  repoUrl: string;
  /** The forge host of repoUrl, for the forge configuration. */
  host: string;
  workspaces: GitWorkspaces;
  close(): Promise<void>;
}

/** A bare repository served over smart HTTP at `/acme/shop.git`, a GitHub-like forge that knows its branches, and workspaces. */
export async function startWorld(files: Record<string, string>): Promise<GitOpsWorld> {
  const dir = tempDir('autodev-gitops-');
  const root = join(dir, 'srv');
  mkdirSync(join(root, 'acme'), { recursive: true });
  const made = makeRemote(join(root, 'acme'), files);
  const remote = join(root, 'acme', 'shop.git');
  execFileSync('mv', [made, remote]);
  const git = await startGitHttpServer({ root, auth: GIT_USER });
  const forge = await startForgeServer({
    tokens: [FORGE_TOKEN],
    branchExists: (repoPath, branch) => {
      if (repoPath !== 'acme/shop') return false;
      try {
        gitIn(remote, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
        return true;
      } catch {
        return false;
      }
    },
  });
  const url = new URL(git.urlFor('acme/shop.git'));
  url.username = GIT_USER.username;
  url.password = GIT_USER.password;
  const workspaces = new GitWorkspaces({
    root: join(dir, 'work'),
    mirrors: join(dir, 'mirrors'),
    authorName: 'AutoDev',
    authorEmail: 'autodev@example.com',
    branchPrefix: 'autodev/',
  });
  return {
    dir,
    remote,
    git,
    forge,
    repoUrl: url.toString(),
    host: url.host,
    workspaces,
    async close() {
      await git.close();
      await forge.close();
    },
  };
}

/** The commit a branch of the bare repository points at, or undefined. */
export function remoteBranch(remote: string, branch: string): string | undefined {
  try {
    return gitIn(remote, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).trim();
  } catch {
    return undefined;
  }
}
