import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type GitWorkspaces, WorkspaceError } from '../../../lib/worker/workspace.js';
import { type GitHttpServer, startGitHttpServer } from '../../support/git-http-server.js';
import { gitIn, makeRemote, tempDir } from '../../support/local-platform.js';
import { workspacesIn } from '../../support/workspaces.js';

const PASSWORD = 'wrong-password-in-the-url';

/** Every file's content under `dir`. */
function contents(dir: string): string {
  return readdirSync(dir, { recursive: true })
    .map((f) => join(dir, String(f)))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

describe('a failed first fetch of a mirror leaves nothing behind', () => {
  let dir: string;
  let server: GitHttpServer;
  let workspaces: GitWorkspaces;
  const mirrors = () => join(dir, 'mirrors');

  beforeAll(async () => {
    dir = tempDir('autodev-mirror-');
    mkdirSync(join(dir, 'srv', 'acme'), { recursive: true });
    gitIn(dir, ['clone', '--quiet', '--bare', makeRemote(dir), join(dir, 'srv', 'acme', 'app.git')]);
    server = await startGitHttpServer({
      root: join(dir, 'srv'),
      auth: { username: 'autodev', password: 'right' },
    });
    workspaces = workspacesIn(dir);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it('access denied: a workspace error without the password, and no temporary mirror holding the URL', async () => {
    const url = new URL(server.urlFor('acme/app.git'));
    url.username = 'autodev';
    url.password = PASSWORD;
    // Act
    const err = await workspaces.prepare('t0000000000000000000c', url.toString()).catch((e: unknown) => e);
    // Assert
    expect(err).toBeInstanceOf(WorkspaceError);
    expect((err as Error).message).toMatch(
      /^Access to the repository http:\/\/127\.0\.0\.1:\d+\/acme\/app\.git was denied/,
    );
    expect((err as Error).message).not.toContain(PASSWORD);
    expect(readdirSync(mirrors()).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(contents(mirrors())).not.toContain(PASSWORD);
  });

  it('a repository that does not exist: a workspace error, and no temporary mirror', async () => {
    const err = await workspaces
      .prepare('t0000000000000000000d', join(dir, 'no-such-repo.git'))
      .catch((e: unknown) => e);
    expect((err as Error).message).toContain('does not exist or cannot be reached');
    expect(readdirSync(mirrors()).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('the start-up sweep removes what a killed process left, not what a live one is making', async () => {
    const dead = spawnSync('true').pid;
    const left = join(mirrors(), `0123456789abcdef.git.tmp-${dead}-1700000000000`);
    const making = join(mirrors(), `fedcba9876543210.git.tmp-${process.pid}-1700000000000`);
    for (const d of [left, making]) {
      mkdirSync(d);
      writeFileSync(
        join(d, 'config'),
        `[remote "origin"]\n\turl = https://u:${PASSWORD}@example.com/r.git\n`,
      );
    }
    await workspaces.sweep(() => false);
    expect(readdirSync(mirrors()).filter((n) => n.includes('.tmp-'))).toEqual([
      `fedcba9876543210.git.tmp-${process.pid}-1700000000000`,
    ]);
  });
});
