import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { DriverInput } from '../core/ports.js';
import type { Task, TaskReview, Usage } from '../core/schemas.js';
import { type AgentProcessOptions, type ProcessLimits, runAgentProcess } from './agent-process.js';
import { fenceFor, tail } from './gates.js';
import { git, inTree, type TrustedWorktree } from './git.js';
import type { ProviderConfig } from './run-attempt.js';

/**
 * What a review agent answers: its verdict, a summary for people, and comments on lines of the
 * change (paths relative to the repository root, line numbers in the new version of the file).
 */
export const ReviewVerdict = z
  .object({
    verdict: z.enum(['approve', 'request_changes']),
    summary: z.string().trim().min(1).max(10_000),
    comments: z
      .array(
        z
          .object({
            path: z
              .string()
              .min(1)
              .max(1000)
              .refine(
                (p) => !p.startsWith('/') && !p.split('/').includes('..'),
                'a path inside the repository',
              ),
            line: z.number().int().positive(),
            body: z.string().trim().min(1).max(10_000),
          })
          .strict(),
      )
      .max(50)
      .default([]),
  })
  .strict();
export type ReviewVerdict = z.output<typeof ReviewVerdict>;

/** Characters of diff given to the review agent; the rest is cut with a note. */
export const MAX_REVIEW_DIFF_CHARS = 60_000;

const EXAMPLE = JSON.stringify(
  {
    verdict: 'request_changes',
    summary: 'The limiter works, but the window is never reset.',
    comments: [{ path: 'src/limits.ts', line: 42, body: 'Reset `count` when the window rolls over.' }],
  },
  null,
  2,
);

/** The first line of every review prompt (the test fakes tell a reviewer from an author by it). */
export const REVIEW_PROMPT_OPENING =
  'Review the change below, made by another engineer for the task that follows.';

/** The prompt for a review agent: the task, the change as a unified diff, and the answer's format. */
export function reviewPrompt(task: Pick<Task, 'prompt'>, diff: string): string {
  const cut = diff.length > MAX_REVIEW_DIFF_CHARS;
  const shown = cut ? `${diff.slice(0, MAX_REVIEW_DIFF_CHARS)}\n… (diff cut here)` : diff;
  const fence = fenceFor(shown);
  return [
    REVIEW_PROMPT_OPENING,
    'Check that it does what the task asks, is correct, is tested, and adds no security problem.',
    'Do not change any file: only answer.',
    '',
    '## The task',
    '',
    task.prompt.trim(),
    '',
    `## The change${cut ? ' (too long: only its beginning is shown)' : ''}`,
    '',
    `${fence}diff`,
    shown.trimEnd(),
    fence,
    '',
    '## Your answer',
    '',
    'End your answer with one JSON object in a ```json block, and nothing after it, in this form:',
    '',
    '```json',
    EXAMPLE,
    '```',
    '',
    '- `verdict`: "approve" when the change can be merged as it is, otherwise "request_changes".',
    '- `summary`: a few sentences for the people who will read the pull request.',
    '- `comments`: up to 50; `path` relative to the repository root, `line` in the new version of the file. May be empty.',
  ].join('\n');
}

export type ParsedReview = { ok: true; review: ReviewVerdict } | { ok: false; error: string };

/**
 * Finds the review verdict in an agent's final text: the last ```json block that holds one, else the
 * last JSON object in the text that holds one; then validates it.
 */
export function parseReview(text: string): ParsedReview {
  const candidates = [
    ...Array.from(text.matchAll(/```(?:json)?[ \t]*\r?\n([\s\S]*?)\r?\n?```/g), (m) => m[1] ?? '').reverse(),
    ...jsonObjects(text).reverse(),
  ];
  let lastError = 'no JSON object with a "verdict" was found in the answer';
  for (const candidate of candidates) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    if (!value || typeof value !== 'object' || !('verdict' in value)) continue;
    const parsed = ReviewVerdict.safeParse(value);
    if (parsed.success) return { ok: true, review: parsed.data };
    lastError = `the verdict is invalid: ${parsed.error.issues
      .map((i) => `${i.path.join('.') || '(object)'}: ${i.message}`)
      .join('; ')}`;
  }
  return { ok: false, error: lastError };
}

/** For each `{` from the last one back (at most 500), the balanced `{…}` span that starts there. */
function jsonObjects(text: string): string[] {
  const spans: string[] = [];
  let from = text.length;
  for (let n = 0; n < 500; n++) {
    const start = text.lastIndexOf('{', from - 1);
    if (start < 0) break;
    from = start;
    const end = balancedEnd(text, start);
    if (end > 0) spans.push(text.slice(start, end + 1));
  }
  return spans.reverse();
}

/** Index of the `}` closing the `{` at `start` (strings skipped), or -1. */
function balancedEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Characters of the review (summary and comments) given back to the task's agent. */
const REVISION_REVIEW_BUDGET = 12_000;

/**
 * The prompt for the round after a request for changes: the task again, then the reviewer's summary
 * and each of its comments, for the task's own agent to address in the same worktree.
 */
export function revisionPrompt(taskPrompt: string, review: ReviewVerdict): string {
  const per = Math.max(500, Math.floor(REVISION_REVIEW_BUDGET / (review.comments.length + 1)));
  const cut = (text: string) => (text.length > per ? `${text.slice(0, per - 1)}…` : text);
  const comments = review.comments.map(
    (c) => `- \`${c.path}\` line ${c.line}: ${cut(c.body).replace(/\n/g, '\n  ')}`,
  );
  return [
    'You worked on the task below, and a reviewer asked for changes to what you did.',
    'Address each point of the review in the code. Do not weaken, skip or delete tests or checks.',
    '',
    '## The task',
    '',
    taskPrompt.trim(),
    '',
    '## Review comments',
    '',
    cut(review.summary),
    ...(comments.length > 0 ? ['', ...comments] : []),
  ].join('\n');
}

/** The worktree as git sees it (untracked files included, ignored ones not): a tree and its diff from the base. */
export interface WorktreeSnapshot {
  /** A tree object of every file in the worktree (written to the repository's object store). */
  tree: string;
  /** `git diff <baseCommit> <tree>`: what the change is, new files included. */
  diff: string;
}

/**
 * Snapshots the worktree through a temporary index (a copy of the worktree's own, to reuse its file
 * times), so that the worktree's index, and so the later commit, are left as they were.
 */
export async function snapshotWorktree(
  where: string | TrustedWorktree,
  baseCommit: string,
): Promise<WorktreeSnapshot> {
  const tmp = mkdtempSync(join(tmpdir(), 'autodev-snapshot-'));
  const env = { GIT_INDEX_FILE: join(tmp, 'index') };
  const at = inTree(where);
  const workdir = typeof where === 'string' ? where : where.dir;
  try {
    const own = resolve(workdir, (await git(['rev-parse', '--git-path', 'index'], at)).trim());
    if (existsSync(own)) copyFileSync(own, env.GIT_INDEX_FILE);
    else await git(['read-tree', baseCommit], { ...at, env });
    await git(['add', '--all'], { ...at, env });
    const tree = (await git(['write-tree'], { ...at, env })).trim();
    const diff = await git(
      ['diff', '--no-color', '--no-ext-diff', '--no-textconv', '--no-renames', baseCommit, tree],
      at,
    );
    return { tree, diff };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Puts back the files that changed between two snapshots (`before` is what they must be): those in
 * `before` are checked out of it (through a temporary index), the others are deleted. Other files
 * are not touched. Returns the paths put back.
 */
export async function restoreWorktree(
  where: string | TrustedWorktree,
  before: string,
  after: string,
): Promise<string[]> {
  const at = inTree(where);
  const workdir = typeof where === 'string' ? where : where.dir;
  const list = async (args: string[]) =>
    (await git(args, { ...at, env: { GIT_LITERAL_PATHSPECS: '1' } })).split('\0').filter(Boolean);
  const touched = await list(['diff', '--name-only', '--no-renames', '-z', before, after]);
  if (touched.length === 0) return [];
  const known = new Set(await list(['ls-tree', '-r', '-z', '--name-only', before, '--', ...touched]));
  for (const path of touched) if (!known.has(path)) rmSync(join(workdir, path), { force: true });
  if (known.size > 0) {
    const tmp = mkdtempSync(join(tmpdir(), 'autodev-restore-'));
    const env = { GIT_INDEX_FILE: join(tmp, 'index'), GIT_LITERAL_PATHSPECS: '1' };
    try {
      await git(['read-tree', before], { ...at, env });
      await git(['checkout-index', '-f', '--', ...known], { ...at, env });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return touched;
}

/** The reviewer changed files and they could not be put back: the worktree cannot be trusted. */
export class ReviewerEditError extends Error {}

export interface ReviewRunOptions {
  task: Pick<Task, 'prompt'>;
  /** The review agent's provider; undefined when the name in `.autodev.yml` is not configured. */
  reviewer: ProviderConfig | undefined;
  reviewerName: string;
  /** The reviewer's binary, resolved on PATH (undefined: not installed). */
  bin: string | undefined;
  workdir: string;
  /** The worktree as the server recorded it, for the server's own git commands on it. */
  worktree?: TrustedWorktree;
  homeDir: string;
  baseCommit: string;
  /** The agent's environment (PATH, locale...), without credentials: the provider's come from its config. */
  baseEnv: Record<string, string>;
  /**
   * The reviewer's own model gateway session: its CLI is pointed at it with the session credential,
   * and the provider's key is kept out of its environment. Absent: the CLI talks to its provider.
   */
  gateway?: DriverInput['gateway'];
  limits: ProcessLimits;
  signal?: AbortSignal;
  log: (line: string) => void;
  maxTurns?: number;
  maxBudgetUsd?: number;
  /** The sandbox the reviewer runs in, as the task's own agent (absent: unconfined). */
  sandbox?: AgentProcessOptions['sandbox'];
}

export interface ReviewRunResult {
  /** What the task records: the verdict, or `error` with what went wrong. */
  review: TaskReview;
  /** The valid verdict, for the pull request; absent when the review failed. */
  verdict?: ReviewVerdict;
  /** Tokens and cost of the reviewer's run. */
  usage?: Partial<Usage>;
}

/**
 * Runs the review agent headless in the worktree with `reviewPrompt(task, diff)` and reads its verdict.
 * Never fails the attempt for a reviewer's failure (the CLI failed, the answer is unreadable, it
 * changed files): that is an `error` review. Files the reviewer changed are put back; when they
 * cannot be, ReviewerEditError is thrown.
 */
export async function runReview(o: ReviewRunOptions): Promise<ReviewRunResult> {
  const name = o.reviewerName;
  const failed = (summary: string, usage?: Partial<Usage>): ReviewRunResult => {
    o.log(`review by ${name} failed: ${summary}`);
    return { review: { provider: name, verdict: 'error', summary, comments: [] }, usage };
  };
  if (!o.reviewer) return failed(`no provider named "${name}" is configured`);
  if (!o.bin) return failed(`"${o.reviewer.bin}" was not found on PATH`);
  const { driver } = o.reviewer;
  const before = await snapshotWorktree(o.worktree ?? o.workdir, o.baseCommit);
  const input = {
    prompt: reviewPrompt(o.task, before.diff),
    workdir: o.workdir,
    homeDir: o.homeDir,
    model: o.reviewer.model,
    maxTurns: o.maxTurns,
    maxBudgetUsd: o.maxBudgetUsd,
    gateway: o.gateway,
  };
  o.log(`review: starting ${name} (${o.bin}) on a diff of ${before.diff.length} characters`);
  let output: Awaited<ReturnType<typeof runAgentProcess>>;
  try {
    const cmd = driver.command(input);
    output = await runAgentProcess({
      bin: o.bin,
      args: cmd.args,
      cwd: o.workdir,
      env: { ...o.baseEnv, HOME: o.homeDir, ...o.reviewer.env, ...cmd.env },
      stdin: cmd.stdin,
      limits: o.limits,
      signal: o.signal,
      sandbox: o.sandbox,
      onStart: (pid) => o.log(`review agent process ${pid} started`),
      onLine: (stream, line) =>
        o.log(`[${name} review ${stream}] ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}`),
    });
  } catch (err) {
    return failed(`${name} could not be started: ${(err as Error).message}`);
  }
  const parsed = driver.parse(output, input);
  const usage = parsed.usage;
  // the reviewer was told not to change anything; whatever it changed is put back and its review discarded
  const after = await snapshotWorktree(o.worktree ?? o.workdir, o.baseCommit);
  if (after.tree !== before.tree) {
    const touched = await restoreWorktree(o.worktree ?? o.workdir, before.tree, after.tree);
    const check = await snapshotWorktree(o.worktree ?? o.workdir, o.baseCommit);
    if (check.tree !== before.tree)
      throw new ReviewerEditError(
        `the review agent ${name} changed files (${touched.slice(0, 10).join(', ')}) and they could not be put back`,
      );
    const shown = `${touched.slice(0, 10).join(', ')}${touched.length > 10 ? ` and ${touched.length - 10} more` : ''}`;
    return failed(
      `the review agent changed files although it was told not to (${shown}); they were put back and its review discarded`,
      usage,
    );
  }
  if (o.signal?.aborted) return failed('the attempt was stopped', usage);
  const errorClass = driver.classify(output, parsed);
  if (errorClass) {
    const how = output.timedOut
      ? 'ran past its time limit and was killed'
      : output.signal
        ? `was killed by ${output.signal}`
        : `exited with code ${output.exitCode}`;
    return failed(
      `${name} ${how} (${errorClass})${parsed.errorMessage ? `: ${parsed.errorMessage}` : ''}`,
      usage,
    );
  }
  const verdict = parseReview(parsed.text ?? '');
  if (!verdict.ok) {
    const answer = parsed.text?.trim() ? ` Its answer ended: ${tail(parsed.text, 300)}` : '';
    return failed(`the review agent's answer could not be read: ${verdict.error}.${answer}`, usage);
  }
  const { review } = verdict;
  o.log(
    `review by ${name}: ${review.verdict} with ${review.comments.length} comment(s): ${review.summary.split('\n')[0]?.slice(0, 200)}`,
  );
  return {
    review: { provider: name, verdict: review.verdict, summary: review.summary, comments: review.comments },
    verdict: review,
    usage,
  };
}
