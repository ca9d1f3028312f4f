import { z } from 'zod';
import type { Task } from '../core/schemas.js';
import { fenceFor } from './gates.js';

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

/** The prompt for a review agent: the task, the change as a unified diff, and the answer's format. */
export function reviewPrompt(task: Pick<Task, 'prompt'>, diff: string): string {
  const cut = diff.length > MAX_REVIEW_DIFF_CHARS;
  const shown = cut ? `${diff.slice(0, MAX_REVIEW_DIFF_CHARS)}\n… (diff cut here)` : diff;
  const fence = fenceFor(shown);
  return [
    'Review the change below, made by another engineer for the task that follows.',
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
