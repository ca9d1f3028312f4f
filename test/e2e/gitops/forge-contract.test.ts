import { afterEach, describe, expect, it } from '@jest/globals';
import {
  ForgeError,
  type ForgePort,
  GitHubForge,
  GitLabForge,
  type PullRequestRequest,
} from '../../../lib/worker/forge/index.js';
import { type ForgeServer, startForgeServer } from '../../support/forge-server.js';

/** One suite for the ForgePort, run against each adapter and the matching routes of the local forge. */

const TOKEN = 'contract-token';

interface SeenPull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  draft: boolean;
  open: boolean;
  labels: string[];
  comments: string[];
}

interface Adapter {
  name: string;
  repo: string;
  make(server: ForgeServer, token: string): ForgePort;
  /** The pull (merge) requests the forge holds, in one shape. */
  seen(server: ForgeServer): SeenPull[];
  close(server: ForgeServer, number: number): void;
}

const adapters: Adapter[] = [
  {
    name: 'GitHubForge',
    repo: 'https://github.example.com/acme/shop.git',
    make: (s, token) => new GitHubForge({ apiBaseUrl: s.githubApi, auth: { token } }),
    seen: (s) =>
      s.pulls.map((p) => ({
        number: p.number,
        head: p.head,
        base: p.base,
        title: p.title,
        body: p.body,
        draft: p.draft,
        open: p.state === 'open',
        labels: p.labels,
        comments: p.comments,
      })),
    close: (s, n) => {
      const p = s.pulls.find((x) => x.number === n);
      if (p) p.state = 'closed';
    },
  },
  {
    name: 'GitLabForge',
    repo: 'https://gitlab.example.com/acme/shop.git',
    make: (s, token) => new GitLabForge({ apiBaseUrl: s.gitlabApi, token }),
    seen: (s) =>
      s.mergeRequests.map((m) => ({
        number: m.iid,
        head: m.source_branch,
        base: m.target_branch,
        title: m.title.replace(/^Draft: /, ''),
        body: m.description,
        draft: m.title.startsWith('Draft: '),
        open: m.state === 'opened',
        labels: m.labels,
        comments: m.notes,
      })),
    close: (s, n) => {
      const m = s.mergeRequests.find((x) => x.iid === n);
      if (m) m.state = 'closed';
    },
  },
];

let server: ForgeServer | undefined;
afterEach(async () => {
  expect(server?.violations ?? []).toEqual([]);
  await server?.close();
  server = undefined;
});

describe.each(adapters)('ForgePort contract: $name', (adapter) => {
  const request = (over: Partial<PullRequestRequest> = {}): PullRequestRequest => ({
    repo: adapter.repo,
    branch: 'autodev/tsk_c',
    base: 'main',
    title: 'AutoDev: contract',
    body: 'body 1',
    labels: ['autodev'],
    draft: false,
    ...over,
  });
  const setup = async () => {
    server = await startForgeServer({ tokens: [TOKEN] });
    return { s: server, forge: adapter.make(server, TOKEN) };
  };

  it('opens a pull request from the branch into the base, with title, body, labels and draft state', async () => {
    const { s, forge } = await setup();
    const ref = await forge.findOrCreatePullRequest(request({ draft: true }));
    expect(ref).toMatchObject({
      number: 1,
      created: true,
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/acme\/shop\//),
    });
    expect(adapter.seen(s)).toEqual([
      {
        number: 1,
        head: 'autodev/tsk_c',
        base: 'main',
        title: 'AutoDev: contract',
        body: 'body 1',
        draft: true,
        open: true,
        labels: ['autodev'],
        comments: [],
      },
    ]);
  });

  it('updates the open one for the branch on a repeat: title, body, base, labels, draft state', async () => {
    const { s, forge } = await setup();
    const first = await forge.findOrCreatePullRequest(request({ draft: true }));
    const again = await forge.findOrCreatePullRequest(
      request({ title: 'AutoDev: contract, again', body: 'body 2', base: 'develop', labels: ['extra'] }),
    );
    expect(again).toEqual({ ...first, created: false });
    expect(adapter.seen(s)).toEqual([
      expect.objectContaining({
        title: 'AutoDev: contract, again',
        body: 'body 2',
        base: 'develop',
        draft: false,
        labels: ['autodev', 'extra'],
      }),
    ]);
  });

  it('makes one pull request out of racing calls', async () => {
    const { s, forge } = await setup();
    const refs = await Promise.all([1, 2, 3].map(() => forge.findOrCreatePullRequest(request())));
    expect(adapter.seen(s)).toHaveLength(1);
    expect(new Set(refs.map((r) => r.number))).toEqual(new Set([1]));
    expect(refs.filter((r) => r.created)).toHaveLength(1);
  });

  it('opens a new one once the old one is closed, and one per branch', async () => {
    const { s, forge } = await setup();
    await forge.findOrCreatePullRequest(request());
    adapter.close(s, 1);
    expect(await forge.findOrCreatePullRequest(request())).toMatchObject({ number: 2, created: true });
    expect(await forge.findOrCreatePullRequest(request({ branch: 'autodev/other' }))).toMatchObject({
      number: 3,
      created: true,
    });
  });

  it('comments on the pull request', async () => {
    const { s, forge } = await setup();
    const { number } = await forge.findOrCreatePullRequest(request());
    await forge.comment({ repo: adapter.repo, number, body: 'hello' });
    expect(adapter.seen(s)[0]?.comments).toEqual(['hello']);
  });

  it('fails with a ForgeError carrying 401 for a bad token, and 404 for an unknown pull request', async () => {
    const { s } = await setup();
    const badToken = await adapter
      .make(s, 'bad')
      .findOrCreatePullRequest(request())
      .catch((e: unknown) => e);
    expect(badToken).toBeInstanceOf(ForgeError);
    expect(badToken).toMatchObject({ status: 401 });
    const unknownPull = await adapter
      .make(s, TOKEN)
      .comment({ repo: adapter.repo, number: 99, body: 'x' })
      .catch((e: unknown) => e);
    expect(unknownPull).toBeInstanceOf(ForgeError);
    expect(unknownPull).toMatchObject({ status: 404 });
  });

  it('refuses a repository URL that is not on a forge', async () => {
    const { forge } = await setup();
    await expect(
      forge.findOrCreatePullRequest(request({ repo: '/srv/git/shop.git' })),
    ).rejects.toBeInstanceOf(ForgeError);
  });
});
