import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Task } from '../../../lib/core/schemas.js';
import { ClaudeDriver } from '../../../lib/worker/drivers/claude.js';
import { CodexDriver } from '../../../lib/worker/drivers/codex.js';
import { parseAutodevConfig } from '../../../lib/worker/gates.js';
import {
  REVIEW_PROMPT_OPENING,
  reviewPrompt,
  revisionPrompt,
  snapshotWorktree,
} from '../../../lib/worker/review.js';
import { type AttemptReport, type ProviderConfig, runAttempt } from '../../../lib/worker/run-attempt.js';
import { FORGE_TOKEN, type GitOpsWorld, remoteBranch, startWorld } from '../../e2e/gitops/helpers.js';
import { FAKES, gitIn, tempDir } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';

/**
 * The review step of an attempt, in process: a real remote over smart HTTP, the local fake GitHub,
 * the fake claude as the task's agent and the fake codex as the review agent (`.autodev.yml` `review`).
 */

const PROVIDERS: Record<string, ProviderConfig> = {
  claude: { name: 'claude', driver: new ClaudeDriver(), bin: 'claude', env: {} },
  codex: { name: 'codex', driver: new CodexDriver(), bin: 'codex', env: { CODEX_API_KEY: 'codex-test-key' } },
};

let world: GitOpsWorld | undefined;
afterEach(async () => {
  expect(world?.forge.violations ?? []).toEqual([]);
  await world?.close();
  world = undefined;
});

async function attempt(
  w: GitOpsWorld,
  prompt: string,
  providers: Record<string, ProviderConfig> = PROVIDERS,
) {
  const lines: string[] = [];
  const task: Task = makeTask({
    repo: w.repoUrl,
    prompt,
    provider: 'claude',
    status: 'running',
    attempts: [{ number: 1, provider: 'claude', startedAt: new Date().toISOString(), outcome: 'running' }],
  });
  const report: AttemptReport = await runAttempt({
    task,
    role: { ...(BUILT_IN_ROLES.backend as NonNullable<typeof BUILT_IN_ROLES.backend>), timeoutSeconds: 60 },
    provider: providers.claude as ProviderConfig,
    providers,
    workspaces: w.workspaces,
    baseEnv: { PATH: `${FAKES}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    defaultTimeoutSeconds: 60,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    forges: [{ host: w.host, kind: 'github', apiBaseUrl: w.forge.githubApi, tokenSecret: 'GHE_TOKEN' }],
    secrets: { GHE_TOKEN: FORGE_TOKEN },
  });
  const branch = `autodev/${task.id}`;
  return { task, report, log: lines.join('\n'), branch, pull: w.forge.pulls.find((p) => p.head === branch) };
}

/** A file of the pushed branch, as the remote has it. */
const fileAt = (w: GitOpsWorld, commit: string, path: string) =>
  gitIn(w.remote, ['show', `${commit}:${path}`]);
const filesOf = (w: GitOpsWorld, commit: string) =>
  gitIn(w.remote, ['diff', '--name-only', `${commit}~1`, commit])
    .trim()
    .split('\n');

const REVIEWED = (rounds = 0, gate = false) => ({
  'README.md': '# shop\n',
  '.autodev.yml': [
    ...(gate ? ['gates:', '  - name: notes', '    run: test -f NOTES.md', '    timeoutSeconds: 30'] : []),
    'review:',
    '  provider: codex',
    `  rounds: ${rounds}`,
    '',
  ].join('\n'),
});

describe('the review agent in an attempt', () => {
  it('reviews the change (new files included) and posts its approval on the pull request', async () => {
    // Arrange
    world = await startWorld(REVIEWED());

    // Act
    const { report, pull, log } = await attempt(
      world,
      'Add notes [fake:edit=NOTES.md] [fake:review=approve]',
    );

    // Assert
    expect(report).toMatchObject({ ok: true, changedFiles: ['NOTES.md'] });
    // the fake reviewer comments on the first file of the diff it was given: the new, untracked file
    expect(report.review).toEqual({
      provider: 'codex',
      verdict: 'approve',
      summary: 'The change does what the task asks; NOTES.md reads well.',
      comments: [{ path: 'NOTES.md', line: 1, body: 'Looks good.' }],
    });
    // claude's tokens and cost, then codex's (no cost reported: priced from its default model)
    expect(report.usage.inputTokens).toBe(17_204 + 9_120);
    expect(report.usage.outputTokens).toBe(32 + 240);
    expect(report.usage.costUsd).toBeGreaterThan(0.3464);
    expect(pull?.reviews).toEqual([
      {
        event: 'APPROVE',
        body: 'The change does what the task asks; NOTES.md reads well.',
        comments: [{ path: 'NOTES.md', line: 1, side: 'RIGHT', body: 'Looks good.' }],
      },
    ]);
    expect(pull?.body).toContain('**Approved** by the review agent.');
    expect(log).toContain('review by codex: approve with 1 comment(s)');
    expect(remoteBranch(world.remote, pull?.head ?? '')).toBe(report.commit);
    expect(filesOf(world, report.commit as string)).toEqual(['NOTES.md']);
  });

  it('with rounds: 1, sends a request for changes back to the task’s agent, runs the gates again and reviews again', async () => {
    // Arrange
    world = await startWorld(REVIEWED(1, true));
    const state = join(tempDir('autodev-review-state-'), 'requested');

    // Act
    const { report, pull, log } = await attempt(
      world,
      `Add notes [fake:edit=NOTES.md] [fake:revise=REVISED.md] [fake:review=request_changes_once:${state}]`,
    );

    // Assert
    expect(report.ok).toBe(true);
    expect(log).toContain('review by codex: request_changes with 1 comment(s)');
    expect(log).toContain('review round 1: starting claude with the review comments');
    expect(log.match(/gate notes: passed/g)).toHaveLength(2);
    expect(report.review).toMatchObject({ provider: 'codex', verdict: 'approve' });
    // the author was given the reviewer's comment and acted on it; both changes are committed
    const commit = report.commit as string;
    expect(filesOf(world, commit).sort()).toEqual(['NOTES.md', 'REVISED.md']);
    expect(fileAt(world, commit, 'REVISED.md')).toContain(
      '- `NOTES.md` line 1: Add a test that covers NOTES.md.',
    );
    // only the final review reaches the pull request
    expect(pull?.reviews.map((r) => r.event)).toEqual(['APPROVE']);
    expect(report.gates).toEqual([expect.objectContaining({ name: 'notes', ok: true })]);
    // claude twice, codex twice
    expect(report.usage.inputTokens).toBe(2 * 17_204 + 2 * 9_120);
  });

  it('with rounds: 0, a request for changes is posted as it is and the task’s agent is not run again', async () => {
    // Arrange
    world = await startWorld(REVIEWED(0));

    // Act
    const { report, pull, log } = await attempt(
      world,
      'Add notes [fake:edit=NOTES.md] [fake:revise=REVISED.md] [fake:review=request_changes]',
    );

    // Assert
    expect(report).toMatchObject({ ok: true, changedFiles: ['NOTES.md'] });
    expect(report.review?.verdict).toBe('request_changes');
    expect(log).not.toContain('review round 1');
    expect(pull?.reviews).toEqual([expect.objectContaining({ event: 'REQUEST_CHANGES' })]);
  });

  it.each([
    ['fail', /codex exited with code 1 \(\w+\): .*500 Internal Server Error/],
    ['garbage', /the review agent's answer could not be read: no JSON object with a "verdict"/],
  ])(
    'a reviewer that fails (%s) does not fail the task: the review is an error, the pull request has none',
    async (how, why) => {
      // Arrange
      world = await startWorld(REVIEWED(1));

      // Act
      const { report, pull, log } = await attempt(
        world,
        `Add notes [fake:edit=NOTES.md] [fake:review=${how}]`,
      );

      // Assert
      expect(report).toMatchObject({ ok: true, changedFiles: ['NOTES.md'] });
      expect(report.review).toMatchObject({ provider: 'codex', verdict: 'error', comments: [] });
      expect(report.review?.summary).toMatch(why);
      expect(log).toMatch(/review by codex failed: /);
      expect(pull).toBeDefined();
      expect(pull?.reviews).toEqual([]);
      expect(remoteBranch(world.remote, pull?.head ?? '')).toBe(report.commit);
    },
  );

  it('a reviewer that is not configured is an error review, and the task succeeds', async () => {
    // Arrange
    world = await startWorld(REVIEWED(0));

    // Act
    const { report, pull } = await attempt(world, 'Add notes [fake:edit=NOTES.md] [fake:review=approve]', {
      claude: PROVIDERS.claude as ProviderConfig,
    });

    // Assert
    expect(report.ok).toBe(true);
    expect(report.review).toMatchObject({
      verdict: 'error',
      summary: 'no provider named "codex" is configured',
    });
    expect(pull?.reviews).toEqual([]);
  });

  it('catches a reviewer that edits files: its edits are put back, its review discarded', async () => {
    // Arrange
    world = await startWorld(REVIEWED(1));

    // Act
    const { report, pull } = await attempt(world, 'Add notes [fake:edit=NOTES.md] [fake:review=edit]');

    // Assert
    expect(report.ok).toBe(true);
    expect(report.review?.verdict).toBe('error');
    expect(report.review?.summary).toContain('the review agent changed files although it was told not to');
    expect(report.review?.summary).toContain('NOTES.md');
    expect(report.review?.summary).toContain('REVIEWER_EDIT.md');
    const commit = report.commit as string;
    expect(filesOf(world, commit)).toEqual(['NOTES.md']);
    expect(fileAt(world, commit, 'NOTES.md')).not.toContain('A reviewer should not write this.');
    expect(fileAt(world, commit, 'NOTES.md')).toContain('Change made by the agent for: Add notes');
    expect(pull?.reviews).toEqual([]);
  });

  it('without `review` in .autodev.yml there is no review', async () => {
    // Arrange
    world = await startWorld({ 'README.md': '# shop\n' });

    // Act
    const { report, pull, log } = await attempt(
      world,
      'Add notes [fake:edit=NOTES.md] [fake:review=approve]',
    );

    // Assert
    expect(report.ok).toBe(true);
    expect(report.review).toBeUndefined();
    expect(log).not.toContain('review');
    expect(pull?.reviews).toEqual([]);
  });
});

describe('review configuration and prompts', () => {
  it('`review` in .autodev.yml: a provider and 0 or 1 rounds (default 0); absent by default', () => {
    expect(parseAutodevConfig('gates: []\n').review).toBeUndefined();
    expect(parseAutodevConfig('review: { provider: codex }\n').review).toEqual({
      provider: 'codex',
      rounds: 0,
    });
    expect(parseAutodevConfig('review: { provider: gemini, rounds: 1 }\n').review).toEqual({
      provider: 'gemini',
      rounds: 1,
    });
    expect(() => parseAutodevConfig('review: { provider: codex, rounds: 2 }\n')).toThrow(/review\.rounds/);
    expect(() => parseAutodevConfig('review: { rounds: 1 }\n')).toThrow(/review\.provider/);
    expect(() => parseAutodevConfig('review: { provider: codex, round: 1 }\n')).toThrow(/review/);
  });

  it('the fakes tell a review prompt by the opening that reviewPrompt writes', () => {
    expect(reviewPrompt({ prompt: 'x' }, '').startsWith(`${REVIEW_PROMPT_OPENING}\n`)).toBe(true);
    for (const fake of ['claude', 'codex'])
      expect(readFileSync(join(FAKES, fake), 'utf8')).toContain(`'${REVIEW_PROMPT_OPENING}'`);
    expect(revisionPrompt('x', { verdict: 'approve', summary: 's', comments: [] })).not.toContain(
      REVIEW_PROMPT_OPENING,
    );
  });

  it('revisionPrompt carries the task, the summary and each comment', () => {
    const text = revisionPrompt('Add rate limiting', {
      verdict: 'request_changes',
      summary: 'The window never resets.',
      comments: [{ path: 'src/limits.ts', line: 42, body: 'Reset `count` here.\nAnd test it.' }],
    });
    expect(text).toContain('## The task\n\nAdd rate limiting');
    expect(text).toContain('## Review comments\n\nThe window never resets.');
    expect(text).toContain('- `src/limits.ts` line 42: Reset `count` here.\n  And test it.');
  });

  it('snapshotWorktree sees new files and leaves the worktree’s index as it was', async () => {
    // Arrange
    const dir = tempDir('autodev-snapshot-test-');
    gitIn(dir, ['init', '--quiet', '--initial-branch=main']);
    gitIn(dir, [
      '-c',
      'user.name=T',
      '-c',
      'user.email=t@example.com',
      'commit',
      '--quiet',
      '--allow-empty',
      '-m',
      'base',
    ]);
    const base = gitIn(dir, ['rev-parse', 'HEAD']).trim();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'new.txt'), 'hello\n');

    // Act
    const snap = await snapshotWorktree(dir, base);

    // Assert
    expect(snap.diff).toContain('diff --git a/new.txt b/new.txt');
    expect(snap.diff).toContain('+hello');
    expect(gitIn(dir, ['diff', '--cached', '--name-only'])).toBe('');
    expect(gitIn(dir, ['status', '--porcelain'])).toBe('?? new.txt\n');
  });
});
