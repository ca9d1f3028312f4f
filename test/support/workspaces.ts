import { join } from 'node:path';
import { GitWorkspaces } from '../../lib/worker/workspace.js';

/** The server's workspaces in a test folder: worktrees under `work/`, mirrors under `mirrors/`. */
export function workspacesIn(dir: string): GitWorkspaces {
  return new GitWorkspaces({
    root: join(dir, 'work'),
    mirrors: join(dir, 'mirrors'),
    authorName: 'AutoDev',
    authorEmail: 'autodev@example.com',
    branchPrefix: 'autodev/',
  });
}
