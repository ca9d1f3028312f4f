import { describe, expect, it } from '@jest/globals';
import { MAX_REVIEW_DIFF_CHARS, parseReview, reviewPrompt } from '../../../lib/worker/review.js';

const verdict = {
  verdict: 'request_changes',
  summary: 'The limiter never resets its window.',
  comments: [{ path: 'src/limits.ts', line: 42, body: 'Reset `count` here.' }],
};

describe('parseReview', () => {
  it('reads the verdict from the last ```json block of the answer', () => {
    // Arrange
    const text = [
      'I looked at the change. An early thought:',
      '```json',
      '{"verdict": "approve", "summary": "first draft"}',
      '```',
      'On second reading:',
      '```json',
      JSON.stringify(verdict, null, 2),
      '```',
    ].join('\n');

    // Act
    const parsed = parseReview(text);

    // Assert
    expect(parsed).toEqual({ ok: true, review: verdict });
  });

  it('reads a bare JSON object after prose that has braces of its own', () => {
    const text = `The function { is odd } and uses a map {a: 1}.\nVerdict: ${JSON.stringify({ verdict: 'approve', summary: 'Good. Braces } in strings { are fine.' })}\nThanks.`;
    expect(parseReview(text)).toEqual({
      ok: true,
      review: { verdict: 'approve', summary: 'Good. Braces } in strings { are fine.', comments: [] },
    });
  });

  it('takes a fenced block without a language tag', () => {
    const parsed = parseReview(`Done.\n\`\`\`\n${JSON.stringify(verdict)}\n\`\`\``);
    expect(parsed.ok).toBe(true);
  });

  it.each([
    ['no JSON at all', 'Looks good to me!', /no JSON object/],
    ['JSON without a verdict', '```json\n{"summary": "fine"}\n```', /no JSON object/],
    ['an unknown verdict', '{"verdict": "lgtm", "summary": "fine"}', /verdict/],
    ['an empty summary', '{"verdict": "approve", "summary": " "}', /summary/],
    [
      'a comment outside the repository',
      '{"verdict": "approve", "summary": "ok", "comments": [{"path": "../etc/passwd", "line": 1, "body": "x"}]}',
      /comments\.0\.path/,
    ],
    [
      'a line number of zero',
      '{"verdict": "approve", "summary": "ok", "comments": [{"path": "a.ts", "line": 0, "body": "x"}]}',
      /comments\.0\.line/,
    ],
    ['an unknown field', '{"verdict": "approve", "summary": "ok", "score": 3}', /Unrecognized key/],
  ])('refuses %s', (_what, text, error) => {
    const parsed = parseReview(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(error);
  });
});

describe('reviewPrompt', () => {
  it('carries the task, the diff in a fence that its backticks cannot close, and the answer format', () => {
    // Arrange
    const diff = 'diff --git a/README.md b/README.md\n+```ts\n+const x = 1;\n+```\n';

    // Act
    const prompt = reviewPrompt({ prompt: 'Document the x constant' }, diff);

    // Assert
    expect(prompt).toContain('Document the x constant');
    expect(prompt).toContain('````diff\ndiff --git a/README.md b/README.md');
    expect(prompt).toContain('"verdict": "request_changes"');
    expect(prompt).toMatch(/`verdict`: "approve" when/);
  });

  it('cuts a long diff and says so', () => {
    const diff = `+${'a'.repeat(MAX_REVIEW_DIFF_CHARS + 5000)}`;
    const prompt = reviewPrompt({ prompt: 'Big change' }, diff);
    expect(prompt.length).toBeLessThan(MAX_REVIEW_DIFF_CHARS + 3000);
    expect(prompt).toContain('(diff cut here)');
    expect(prompt).toContain('only its beginning is shown');
  });

  it('gives an example that parseReview accepts', () => {
    const example = reviewPrompt({ prompt: 'x' }, '').match(/```json\n([\s\S]*?)\n```/)?.[1] ?? '';
    expect(parseReview(`\`\`\`json\n${example}\n\`\`\``).ok).toBe(true);
  });
});
