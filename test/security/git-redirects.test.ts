import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GitWorkspaces } from '../../lib/worker/workspace.js';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import { makeRemote, tempDir } from '../support/local-platform.js';
import { workspacesIn } from '../support/workspaces.js';

/**
 * A remote that answers with a redirect is refused: the address a tenant gave passed the repository
 * policy, the address it redirects to did not (an internal service, another tenant's forge), so the
 * server's git follows no redirect at all.
 */
describe("the server's git follows no HTTP redirect", () => {
  let dir: string;
  let target: GitHttpServer;
  let redirector: Server;
  let redirectorUrl: string;
  let workspaces: GitWorkspaces;

  beforeAll(async () => {
    dir = tempDir('autodev-redirect-');
    mkdirSync(join(dir, 'served', 'acme'), { recursive: true });
    makeRemote(join(dir, 'served', 'acme'));
    target = await startGitHttpServer({ root: join(dir, 'served') });
    // every request, the first included, is sent on to the git server
    redirector = createServer((req, res) => {
      res.writeHead(302, { location: `${target.url}${req.url ?? '/'}` });
      res.end();
    });
    await new Promise<void>((ok) => redirector.listen(0, '127.0.0.1', ok));
    redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    workspaces = workspacesIn(dir);
  });

  afterAll(async () => {
    await target?.close();
    redirector?.closeAllConnections();
    await new Promise((ok) => redirector?.close(ok));
  });

  it('fetches from the git server when named directly', async () => {
    const ws = await workspaces.prepare('t0000000000000000000a', target.urlFor('acme/remote.git'));
    expect(ws.branch).toBe('autodev/t0000000000000000000a');
  });

  it('refuses a remote that redirects, and sends nothing to where it points', async () => {
    // Arrange
    const before = target.requests.length;
    // Act
    const prepared = workspaces.prepare('t0000000000000000000b', `${redirectorUrl}/acme/remote.git`);
    // Assert
    await expect(prepared).rejects.toThrow(/redirect/i);
    expect(target.requests.length).toBe(before);
  });
});
