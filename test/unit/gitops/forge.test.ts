import { describe, expect, it } from '@jest/globals';
import {
  ForgeConfig,
  ForgeError,
  GitHubForge,
  GitLabForge,
  parseRepoUrl,
  pullRequestTitle,
  renderPullRequestBody,
  resolveForge,
} from '../../../lib/worker/forge/index.js';
import type { GateResult } from '../../../lib/worker/gates.js';
import { makeTask } from '../../support/tasks.js';

describe('parseRepoUrl', () => {
  it.each([
    ['https://github.com/acme/shop.git', { host: 'github.com', path: 'acme/shop' }],
    ['https://github.com/acme/shop', { host: 'github.com', path: 'acme/shop' }],
    ['https://token@GitHub.com/acme/shop/', { host: 'github.com', path: 'acme/shop' }],
    ['git@github.com:acme/shop.git', { host: 'github.com', path: 'acme/shop' }],
    ['ssh://git@ghe.example.com:2222/acme/shop.git', { host: 'ghe.example.com', path: 'acme/shop' }],
    [
      'https://gitlab.example.com:8443/group/sub/project.git',
      { host: 'gitlab.example.com:8443', path: 'group/sub/project' },
    ],
    ['http://127.0.0.1:9000/acme/remote.git', { host: '127.0.0.1:9000', path: 'acme/remote' }],
  ])('%s', (url, expected) => {
    expect(parseRepoUrl(url)).toEqual(expected);
  });

  it.each([
    '/srv/git/app.git',
    'file:///srv/git/app.git',
    'https://github.com/just-one',
    'not a url',
    'https://h/a/../b',
  ])('has no forge location for %s', (url) => {
    expect(parseRepoUrl(url)).toBeUndefined();
  });
});

describe('resolveForge', () => {
  const secrets = { GITHUB_TOKEN: 'ghp_t', GITLAB_TOKEN: 'glpat-t', GHE_TOKEN: 'e', APP_KEY: 'pem' };

  it('knows github.com and gitlab.com without configuration', () => {
    expect(resolveForge('https://github.com/acme/shop.git', [], secrets)).toBeInstanceOf(GitHubForge);
    expect(resolveForge('git@gitlab.com:acme/shop.git', [], secrets)).toBeInstanceOf(GitLabForge);
  });

  it('maps configured hosts: GitHub Enterprise Server and self-managed GitLab', () => {
    const config = ForgeConfig.parse([
      {
        host: 'GHE.example.com',
        kind: 'github',
        apiBaseUrl: 'https://ghe.example.com/api/v3',
        tokenSecret: 'GHE_TOKEN',
      },
      { host: 'code.example.org', kind: 'gitlab', apiBaseUrl: 'https://code.example.org/api/v4' },
    ]);
    expect(resolveForge('https://ghe.example.com/acme/shop.git', config, secrets)?.kind).toBe('github');
    expect(resolveForge('git@code.example.org:team/app.git', config, secrets)?.kind).toBe('gitlab');
  });

  it('leaves repositories on no known forge to their branch', () => {
    expect(resolveForge('https://git.example.net/acme/shop.git', [], secrets)).toBeUndefined();
    expect(resolveForge('/srv/git/shop.git', [], secrets)).toBeUndefined();
  });

  it('says which secret is missing for a known forge', () => {
    expect(() => resolveForge('https://github.com/acme/shop.git', [], {})).toThrow(ForgeError);
    expect(() => resolveForge('https://github.com/acme/shop.git', [], {})).toThrow(/GITHUB_TOKEN is not set/);
  });

  it('uses a GitHub App when one is configured', () => {
    const config = ForgeConfig.parse([
      {
        host: 'github.com',
        kind: 'github',
        apiBaseUrl: 'https://api.github.com',
        app: { appId: 12, installationId: '34', privateKeySecret: 'APP_KEY' },
      },
    ]);
    expect(resolveForge('https://github.com/acme/shop', config, { APP_KEY: 'pem' })).toBeInstanceOf(
      GitHubForge,
    );
    expect(() => resolveForge('https://github.com/acme/shop', config, {})).toThrow(/APP_KEY/);
  });

  it('refuses App credentials on a GitLab entry, and bad URLs', () => {
    const app = { appId: 1, installationId: 2, privateKeySecret: 'K' };
    expect(
      ForgeConfig.safeParse([{ host: 'g', kind: 'gitlab', apiBaseUrl: 'https://g/api/v4', app }]).success,
    ).toBe(false);
    expect(ForgeConfig.safeParse([{ host: 'g', kind: 'github', apiBaseUrl: 'not a url' }]).success).toBe(
      false,
    );
  });
});

describe('renderPullRequestBody', () => {
  const task = makeTask({
    id: 'tsk_42',
    prompt: 'Add rate limiting to the orders API\n\nAt most 100 requests a minute.',
    summary: 'Added a token bucket per client and tests.',
    provider: 'codex',
    commit: '0123456789abcdef0123',
    attempts: [
      { number: 1, provider: 'claude', startedAt: 't', outcome: 'failed', errorClass: 'rate_limit' },
      { number: 2, provider: 'codex', startedAt: 't', outcome: 'succeeded' },
    ],
    usage: { inputTokens: 12345, outputTokens: 678, costUsd: 0.04567 },
  });
  const gates: GateResult[] = [
    { name: 'test', ok: true, exitCode: 0, timedOut: false, durationMs: 1234, output: 'ok' },
    {
      name: 'lint',
      ok: false,
      exitCode: 1,
      timedOut: false,
      durationMs: 50,
      output: 'src/a.ts:3 ```unused```',
    },
  ];

  it('has the summary, prompt, provider, attempts, tokens, cost, gates, review and the logs link', () => {
    // Act
    const body = renderPullRequestBody(
      task,
      gates,
      { verdict: 'approve', summary: 'Looks right.', comments: [] },
      { logsUrl: 'https://autodev.example.com/v1/tasks/tsk_42/logs' },
    );

    // Assert
    expect(body).toContain('Added a token bucket per client and tests.');
    expect(body).toContain('At most 100 requests a minute.');
    expect(body).toContain('| Provider | codex |');
    expect(body).toContain('| Attempts | 2 (claude: rate_limit, codex: succeeded) |');
    expect(body).toContain('| Tokens | 12,345 in, 678 out |');
    expect(body).toContain('| Cost | $0.0457 |');
    expect(body).toContain('| test | ✅ passed | 1.2 s |');
    expect(body).toContain('| lint | ❌ exit 1 | 0.1 s |');
    expect(body).toContain('````text\nsrc/a.ts:3 ```unused```\n````');
    expect(body).toContain('**Approved** by the review agent. Looks right.');
    expect(body).toContain('[task logs](https://autodev.example.com/v1/tasks/tsk_42/logs)');
    expect(body).toContain('`0123456789ab`');
  });

  it('says when there are no gates, and stays under the forge limit for huge prompts', () => {
    const body = renderPullRequestBody(
      { ...task, prompt: 'x'.repeat(200_000), summary: 'y'.repeat(200_000) },
      [],
    );
    expect(body).toContain('No gates are configured');
    expect(body.length).toBeLessThan(65_536);
  });

  it('titles the pull request with the first line of the prompt', () => {
    expect(pullRequestTitle(task)).toBe('AutoDev: Add rate limiting to the orders API');
    expect(pullRequestTitle({ prompt: 'a'.repeat(100) }).length).toBe('AutoDev: '.length + 72);
  });
});
