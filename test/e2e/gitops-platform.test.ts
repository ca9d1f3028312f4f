import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import { signGithubPayload } from '../../lib/core/webhooks.js';
import { type ForgeServer, startForgeServer } from '../support/forge-server.js';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/**
 * GitOps through the real local server: repositories served over git's smart HTTP protocol, their
 * host configured as a GitHub forge (the local fake GitHub, behind a proxy that can hold an answer),
 * the fake claude as the agent, webhooks over HTTP, Slack notices to a local endpoint.
 */

const FORGE_TOKEN = 'ghe_token_for_the_platform_test';
const WEBHOOK_SECRET = 'webhook-secret-for-the-platform-test';
/** An issue of acme/shop on the fake forge (which models issues as pull requests): webhook tasks comment on it. */
const ISSUE_NUMBER = 50;
const AWS_KEY = `AKIA${'Z7Q3R5T2W4Y6U8I0'}`;

interface Proxy {
  url: string;
  /** Holds the answer to the next pull request creation (after the forge made it) until the caller lets go. */
  holdNextCreate(): Promise<void>;
  /** While true, every request is answered 503, as by a forge that is down. */
  down: boolean;
  close(): Promise<void>;
}

/** A pass-through proxy in front of the fake forge. */
async function startProxy(target: string): Promise<Proxy> {
  let hold: (() => void) | undefined;
  const held: (() => void)[] = [];
  const state = { down: false };
  const server: Server = createServer((req, res) => {
    if (state.down) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Service Unavailable' }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const creating = req.method === 'POST' && /\/pulls$/.test(req.url ?? '');
      const upstream = request(
        new URL(req.url ?? '/', target),
        { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
        (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            if (creating && hold) {
              const done = hold;
              hold = undefined;
              held.push(() => res.destroy());
              done();
              return;
            }
            try {
              res.writeHead(up.statusCode ?? 502, up.headers);
              res.end(Buffer.concat(body));
            } catch {
              // the client went away
            }
          });
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    holdNextCreate: () =>
      new Promise<void>((r) => {
        hold = r;
      }),
    close: () =>
      new Promise<void>((r) => {
        for (const h of held) h();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A local stand-in for a Slack incoming webhook: records what it is sent. */
async function startSlack() {
  const posts: { text: string; blocks: unknown[] }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/hook`,
    posts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('GitOps through the local platform (real server, smart HTTP remote, fake GitHub)', () => {
  let dir: string;
  let srv: string;
  let git: GitHttpServer;
  let forge: ForgeServer;
  let proxy: Proxy;
  let slack: Awaited<ReturnType<typeof startSlack>>;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;
  let token: string;
  let shopUrl: string;
  let gatedUrl: string;

  const bare = (repoPath: string) => join(srv, `${repoPath}.git`);
  const remoteBranch = (repoPath: string, branch: string) => {
    try {
      return gitIn(bare(repoPath), ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).trim();
    } catch {
      return undefined;
    }
  };
  const api = async (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    });
  const getTask = async (id: string) => (await (await api(`/v1/tasks/${id}`)).json()) as Task;
  const ended = (id: string, timeoutMs = 30_000) =>
    until(
      async () => {
        const t = await getTask(id);
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
      },
      timeoutMs,
      `task ${id} to end`,
    );
  const submit = async (repo: string, prompt: string) => {
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({ repo, prompt, provider: 'claude' }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Task;
  };
  const logs = async (id: string) => (await api(`/v1/tasks/${id}/logs`)).text();
  const pullsFor = (branch: string) => forge.pulls.filter((p) => p.head === branch);

  beforeAll(async () => {
    dir = tempDir('autodev-gitops-platform-');
    srv = join(dir, 'srv');
    mkdirSync(join(srv, 'acme'), { recursive: true });
    const gated = (draftOnFailure: boolean) =>
      [
        'gates:',
        '  - name: fixed',
        '    run: test -f FIXED.txt || { echo "FIXED.txt is missing"; exit 1; }',
        '    timeoutSeconds: 30',
        'repairRounds: 1',
        `draftOnFailure: ${draftOnFailure}`,
        '',
      ].join('\n');
    const repos: Record<string, Record<string, string>> = {
      shop: { 'README.md': '# shop\n' },
      gated: { 'README.md': '# gated\n', '.autodev.yml': gated(false) },
      drafty: { 'README.md': '# drafty\n', '.autodev.yml': gated(true) },
      broken: { 'README.md': '# broken\n', '.autodev.yml': 'gates:\n  - nme: test\n    run: true\n' },
    };
    for (const [name, files] of Object.entries(repos)) {
      const scratch = join(dir, name);
      mkdirSync(scratch);
      const made = makeRemote(scratch, files);
      gitIn(dir, ['clone', '--quiet', '--bare', made, bare(`acme/${name}`)]);
    }
    git = await startGitHttpServer({ root: srv });
    forge = await startForgeServer({
      tokens: [FORGE_TOKEN],
      branchExists: (repoPath, branch) => remoteBranch(repoPath, branch) !== undefined,
    });
    forge.pulls.push({
      number: ISSUE_NUMBER,
      owner: 'acme',
      repo: 'shop',
      title: 'Paginate the orders list',
      body: '',
      head: `issue-${ISSUE_NUMBER}`,
      base: 'main',
      draft: false,
      state: 'closed',
      labels: [],
      comments: [],
      reviews: [],
    });
    proxy = await startProxy(forge.url);
    slack = await startSlack();
    shopUrl = git.urlFor('acme/shop.git');
    gatedUrl = git.urlFor('acme/gated.git');
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(
      join(home, 'forges.yaml'),
      `forges:\n  - host: "${new URL(shopUrl).host}"\n    kind: github\n    apiBaseUrl: ${proxy.url}/api/v3\n    tokenSecret: GHE_TOKEN\n`,
    );
    writeFileSync(join(home, 'secrets.env'), `GHE_TOKEN=${FORGE_TOKEN}\nACME_SLACK_URL=${slack.url}\n`, {
      mode: 0o600,
    });
    writeFileSync(
      join(home, 'notifications.yaml'),
      '- tenant: acme\n  kind: slack\n  urlSecret: ACME_SLACK_URL\n',
    );
    server = await startServer(
      platformEnv(home, {
        AUTODEV_CONCURRENCY: '4',
        AUTODEV_GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        AUTODEV_GITHUB_WEBHOOK_TENANT: 'acme',
      }),
    );
    const minted = await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env);
    expect(minted.code).toBe(0);
    token = minted.stdout.trim();
    env = server.env;
  });

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await git?.close();
    await forge?.close();
    await slack?.close();
    expect(forge?.violations ?? []).toEqual([]);
  });

  it('pushes the branch over HTTP and opens a pull request that tells what was asked, done and spent', async () => {
    // Act
    const submitted = await submit(shopUrl, 'Add a changelog entry [fake:edit=CHANGELOG.md]');
    const task = await ended(submitted.id);

    // Assert
    expect(task).toMatchObject({ status: 'succeeded', branch: `autodev/${task.id}`, provider: 'claude' });
    expect(remoteBranch('acme/shop', `autodev/${task.id}`)).toBe(task.commit);
    expect(git.requests.some((r) => r.service === 'git-receive-pack' && r.status === 200)).toBe(true);
    const pulls = pullsFor(`autodev/${task.id}`);
    expect(pulls).toHaveLength(1);
    const pull = pulls[0];
    expect(pull).toMatchObject({
      title: 'AutoDev: Add a changelog entry [fake:edit=CHANGELOG.md]',
      base: 'main',
      draft: false,
      state: 'open',
      labels: ['autodev'],
    });
    expect(pull?.body).toContain('Updated CHANGELOG.md as asked.');
    expect(pull?.body).toContain('Add a changelog entry [fake:edit=CHANGELOG.md]');
    expect(pull?.body).toContain('| Provider | claude |');
    expect(pull?.body).toContain('| Tokens | 17,204 in, 32 out |');
    expect(pull?.body).toContain('| Cost | $0.3464 |');
    expect(pull?.body).toContain(`| Commit | \`${task.commit?.slice(0, 12)}\` |`);
    expect(pull?.body).toContain(`${server.url}/v1/tasks/${task.id}/logs`);
    expect(task.pullRequest?.url).toBe(`${forge.url}/acme/shop/pull/${pull?.number}`);
    expect(await logs(task.id)).toContain(`opened pull request #${pull?.number}`);
    // the tenant's Slack hears of it, with a button to the pull request
    const post = await until(
      async () => slack.posts.find((p) => p.text.includes('Add a changelog entry')),
      10_000,
      'the Slack notice',
    );
    expect(JSON.stringify(post.blocks)).toContain(task.pullRequest?.url as string);
  });

  it('a retried attempt (the server died after opening the pull request) updates the same pull request', async () => {
    // Arrange: the forge's answer to the creation is held, and the server killed meanwhile
    const held = proxy.holdNextCreate();
    const submitted = await submit(shopUrl, 'Document the retry policy [fake:edit=RETRY.md]');
    await held;
    const branch = `autodev/${submitted.id}`;
    expect(pullsFor(branch)).toHaveLength(1);
    const first = remoteBranch('acme/shop', branch);
    await server.stop('SIGKILL');

    // Act: a new server on the same home re-queues the task and runs it again
    server = await startServer(env);
    const task = await ended(submitted.id);

    // Assert
    expect(task.status).toBe('succeeded');
    expect(task.attempts.map((a) => a.outcome)).toEqual(['abandoned', 'succeeded']);
    const pulls = pullsFor(branch);
    expect(pulls).toHaveLength(1);
    expect(task.pullRequest?.url).toBe(`${forge.url}/acme/shop/pull/${pulls[0]?.number}`);
    expect(
      forge.requests.some(
        (r) => r.method === 'PATCH' && r.path === `/api/v3/repos/acme/shop/pulls/${pulls[0]?.number}`,
      ),
    ).toBe(true);
    expect(pulls[0]?.body).toContain('| Attempts | 2 (claude: abandoned, claude: succeeded) |');
    expect(remoteBranch('acme/shop', branch)).toBe(task.commit);
    // the second push replaces the first (or finds it, when both made the same commit in the same second)
    expect(first).toBeDefined();
    expect(await logs(task.id)).toMatch(/updated pull request #\d+/);
  });

  it('runs the gates of .autodev.yml; the agent repairs the failing one; the gate results are recorded', async () => {
    // Act
    const submitted = await submit(
      gatedUrl,
      'Add the feature [fake:edit=FEATURE.md] [fake:repair=FIXED.txt]',
    );
    const task = await ended(submitted.id);

    // Assert
    expect(task.status).toBe('succeeded');
    expect(task.gates).toEqual([
      { name: 'fixed', ok: true, exitCode: 0, timedOut: false, durationMs: expect.any(Number) },
    ]);
    // the first run and the repair round
    expect(task.usage).toMatchObject({ inputTokens: 2 * 17_204, outputTokens: 64, costUsd: 0.6928 });
    const branch = `autodev/${task.id}`;
    expect(gitIn(bare('acme/gated'), ['show', `${branch}:FIXED.txt`])).toBe('repaired\n');
    expect(gitIn(bare('acme/gated'), ['show', `${branch}:FEATURE.md`])).toContain('Add the feature');
    const log = await logs(task.id);
    expect(log).toContain('gate fixed: failed with exit code 1');
    expect(log).toContain('repair round 1 of 1');
    expect(log).toContain('quality gates passed');
    const [pull] = pullsFor(branch);
    expect(pull?.body).toMatch(/\| fixed \| ✅ passed \|/);
    expect(pull?.labels).toEqual(['autodev']);
  });

  it('fails the task with gates_failed and pushes nothing when the gates still fail and draftOnFailure is false', async () => {
    const submitted = await submit(gatedUrl, 'Add the other feature [fake:edit=OTHER.md]');
    const task = await ended(submitted.id);

    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('gates_failed');
    expect(task.error?.message).toContain('fixed');
    expect(task.attempts).toHaveLength(1);
    expect(task.gates).toEqual([expect.objectContaining({ name: 'fixed', ok: false, exitCode: 1 })]);
    expect(task.gates?.[0]?.output).toContain('FIXED.txt is missing');
    expect(remoteBranch('acme/gated', `autodev/${task.id}`)).toBeUndefined();
    expect(pullsFor(`autodev/${task.id}`)).toEqual([]);
  });

  it('pushes and opens a draft pull request labelled gates-failed when the gates still fail and draftOnFailure is true', async () => {
    const submitted = await submit(git.urlFor('acme/drafty.git'), 'Add a draft feature [fake:edit=DRAFT.md]');
    const task = await ended(submitted.id);

    expect(task.status).toBe('succeeded');
    expect(task.gates).toEqual([expect.objectContaining({ name: 'fixed', ok: false, exitCode: 1 })]);
    const branch = `autodev/${task.id}`;
    expect(remoteBranch('acme/drafty', branch)).toBe(task.commit);
    const [pull] = pullsFor(branch);
    expect(pull).toMatchObject({ draft: true, labels: ['autodev', 'autodev:gates-failed'] });
    expect(pull?.body).toContain('FIXED.txt is missing');
    expect(task.pullRequest?.url).toBe(`${forge.url}/acme/drafty/pull/${pull?.number}`);
  });

  it('fails the task at once, with a message naming the field, when .autodev.yml is invalid', async () => {
    const submitted = await submit(git.urlFor('acme/broken.git'), 'Touch the readme [fake:edit=README.md]');
    const task = await ended(submitted.id);

    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('invalid_autodev_config');
    expect(task.error?.message).toMatch(/\.autodev\.yml is invalid: gates\.0/);
    expect(task.attempts).toHaveLength(1);
    expect(remoteBranch('acme/broken', `autodev/${task.id}`)).toBeUndefined();
  });

  it('keeps the pushed branch when the forge is down: the task succeeds without a pull request and says why', async () => {
    proxy.down = true;
    try {
      const submitted = await submit(shopUrl, 'Add a contributing guide [fake:edit=CONTRIBUTING.md]');
      const task = await ended(submitted.id);

      expect(task.status).toBe('succeeded');
      expect(task.pullRequest).toBeUndefined();
      expect(remoteBranch('acme/shop', `autodev/${task.id}`)).toBe(task.commit);
      expect(await logs(task.id)).toMatch(
        /no pull request: GitHub: could not open the pull request \(HTTP 503\)/,
      );
    } finally {
      proxy.down = false;
    }
  });

  it('blocks the push of a change that adds an AWS access key: failed with secret_detected, not retried', async () => {
    const submitted = await submit(
      shopUrl,
      `Add the deploy settings [fake:write=deploy.env:AWS_ACCESS_KEY_ID=${AWS_KEY}]`,
    );
    const task = await ended(submitted.id);

    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('secret_detected');
    expect(task.error?.message).toContain('deploy.env:1 (aws_access_key_id');
    expect(task.error?.message).not.toContain(AWS_KEY);
    expect(task.attempts).toHaveLength(1);
    expect(remoteBranch('acme/shop', `autodev/${task.id}`)).toBeUndefined();
    expect(pullsFor(`autodev/${task.id}`)).toEqual([]);
    expect(await logs(task.id)).not.toContain(AWS_KEY);
  });

  it('takes GitHub webhooks: bad signature 401, a labelled issue becomes a task, a replay is ignored, the issue hears back', async () => {
    // Arrange
    const payload = JSON.stringify({
      action: 'labeled',
      label: { name: 'autodev' },
      issue: {
        number: ISSUE_NUMBER,
        title: 'Paginate the orders list',
        body: 'Use cursors. [fake:edit=PAGINATION.md]',
        html_url: `https://github.example/acme/shop/issues/${ISSUE_NUMBER}`,
        labels: [{ name: 'autodev' }],
      },
      repository: { full_name: 'acme/shop', clone_url: shopUrl, default_branch: 'main' },
    });
    const deliver = (signature: string, delivery: string) =>
      fetch(`${server.url}/v1/webhooks/github`, {
        method: 'POST',
        body: payload,
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'issues',
          'x-github-delivery': delivery,
          'x-hub-signature-256': signature,
        },
      });
    const before = (await (await api('/v1/tasks?limit=100')).json()) as { items: Task[] };

    // Act
    const forged = await deliver(signGithubPayload('not-the-secret', payload), 'delivery-forged');
    const first = await deliver(signGithubPayload(WEBHOOK_SECRET, payload), 'delivery-1');
    const replay = await deliver(signGithubPayload(WEBHOOK_SECRET, payload), 'delivery-1');

    // Assert
    expect(forged.status).toBe(401);
    expect(first.status).toBe(201);
    const submitted = (await first.json()) as Task;
    expect(submitted).toMatchObject({
      tenant: 'acme',
      repo: shopUrl,
      createdBy: 'github-webhook',
      labels: [`github:acme/shop#${ISSUE_NUMBER}`, 'autodev'],
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ ignored: 'replayed delivery' });
    const after = (await (await api('/v1/tasks?limit=100')).json()) as { items: Task[] };
    expect(after.items.length).toBe(before.items.length + 1);

    const task = await ended(submitted.id);
    expect(task.status).toBe('succeeded');
    expect(task.pullRequest?.url).toMatch(/\/acme\/shop\/pull\/\d+$/);
    const issue = forge.pulls.find((p) => p.number === ISSUE_NUMBER);
    const comment = await until(async () => issue?.comments[0], 10_000, 'the comment on the issue');
    expect(comment).toContain(task.pullRequest?.url as string);
    expect(comment).toContain(task.id);
  });

  it('refuses to start with a forges.yaml entry it cannot use, naming the file and the field', async () => {
    const home = join(dir, 'bad-home');
    mkdirSync(home);
    writeFileSync(
      join(home, 'forges.yaml'),
      '- { host: git.example.com, kind: gitea, apiBaseUrl: https://git.example.com/api }\n',
    );
    const failed = await startServer(platformEnv(home)).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(failed).toMatch(/forges\.yaml: 0\.kind/);
  });
});
