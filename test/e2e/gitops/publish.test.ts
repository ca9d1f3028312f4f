import { afterEach, describe, expect, it } from '@jest/globals';
import { publishPullRequest } from '../../../lib/worker/forge/index.js';
import type { GateResult } from '../../../lib/worker/gates.js';
import { type ForgeServer, startForgeServer } from '../../support/forge-server.js';
import { makeTask } from '../../support/tasks.js';

const TOKEN = 'ghp_publish_test_token';
let server: ForgeServer | undefined;
afterEach(async () => {
  expect(server?.violations ?? []).toEqual([]);
  await server?.close();
  server = undefined;
});

const failing: GateResult = {
  name: 'test',
  ok: false,
  exitCode: 1,
  timedOut: false,
  durationMs: 5,
  output: 'FAIL',
};
const base = {
  branch: 'autodev/tsk_p',
  base: 'main',
  gates: [] as GateResult[],
  draftOnFailure: true,
  secrets: { GHE_TOKEN: TOKEN },
};

describe('publishPullRequest', () => {
  it('opens, then updates, the pull request of the branch and reports which', async () => {
    server = await startForgeServer({ tokens: [TOKEN] });
    const forges = [
      {
        host: 'ghe.example.com',
        kind: 'github' as const,
        apiBaseUrl: server.githubApi,
        tokenSecret: 'GHE_TOKEN',
      },
    ];
    const task = makeTask({ id: 'tsk_p', repo: 'https://ghe.example.com/acme/shop.git', summary: 'Did it.' });
    const lines: string[] = [];
    const first = await publishPullRequest({ ...base, task, forges, log: (l) => lines.push(l) });
    const second = await publishPullRequest({
      ...base,
      task,
      forges,
      gates: [failing],
      log: (l) => lines.push(l),
    });
    expect(first).toMatchObject({ outcome: 'opened', pullRequest: { number: 1, created: true } });
    expect(second).toMatchObject({ outcome: 'updated', pullRequest: { number: 1, created: false } });
    expect(server.pulls).toHaveLength(1);
    expect(server.pulls[0]).toMatchObject({ draft: true, labels: ['autodev', 'autodev:gates-failed'] });
    expect(lines).toEqual([
      expect.stringMatching(/^opened pull request #1: /),
      expect.stringMatching(/^updated draft pull request #1: /),
    ]);
  });

  it('opens a ready pull request with failing gates when draftOnFailure is off', async () => {
    server = await startForgeServer({ tokens: [TOKEN] });
    const forges = [
      {
        host: 'ghe.example.com',
        kind: 'github' as const,
        apiBaseUrl: server.githubApi,
        tokenSecret: 'GHE_TOKEN',
      },
    ];
    const task = makeTask({ repo: 'https://ghe.example.com/acme/shop.git' });
    await publishPullRequest({ ...base, task, forges, gates: [failing], draftOnFailure: false });
    expect(server.pulls[0]?.draft).toBe(false);
  });

  it('leaves a repository on no known forge to its branch', async () => {
    const task = makeTask({ repo: 'https://git.example.net/acme/shop.git' });
    expect(await publishPullRequest({ ...base, task, forges: [] })).toEqual({ outcome: 'no_forge' });
  });

  it('reports a missing secret or a forge that cannot be reached, without throwing', async () => {
    const github = makeTask({ repo: 'https://github.com/acme/shop.git' });
    expect(await publishPullRequest({ ...base, task: github, forges: [], secrets: {} })).toEqual({
      outcome: 'failed',
      message: expect.stringContaining('GITHUB_TOKEN is not set'),
    });
    const down = [
      {
        host: 'ghe.example.com',
        kind: 'github' as const,
        apiBaseUrl: 'http://127.0.0.1:9/api/v3',
        tokenSecret: 'GHE_TOKEN',
      },
    ];
    const task = makeTask({ repo: 'https://ghe.example.com/acme/shop.git' });
    expect(await publishPullRequest({ ...base, task, forges: down })).toMatchObject({ outcome: 'failed' });
  });

  it('keeps the pull request when the review cannot be posted', async () => {
    server = await startForgeServer({ tokens: [TOKEN] });
    const forges = [
      {
        host: 'ghe.example.com',
        kind: 'github' as const,
        apiBaseUrl: server.githubApi,
        tokenSecret: 'GHE_TOKEN',
      },
    ];
    const task = makeTask({ repo: 'https://ghe.example.com/acme/shop.git' });
    // GitHub refuses a review comment with an empty body
    const out = await publishPullRequest({
      ...base,
      task,
      forges,
      review: { verdict: 'approve', summary: 'ok', comments: [{ path: 'a.ts', line: 1, body: '' }] },
    });
    expect(out).toMatchObject({ outcome: 'opened', reviewPosted: false });
    expect(server.pulls).toHaveLength(1);
    // refused twice: as an approval, then as the comment review it falls back to
    expect(server.violations).toEqual([
      expect.stringContaining('/reviews body'),
      expect.stringContaining('/reviews body'),
    ]);
    server.violations.length = 0; // the refused review was the point of this test
  });
});
