import type { Task } from '../../core/schemas.js';
import { fenceFor, type GateResult, tail } from '../gates.js';
import type { ReviewVerdict } from '../review.js';

/** GitHub refuses bodies over 65,536 characters; GitLab allows more. */
export const MAX_BODY_CHARS = 60_000;
const MAX_PROMPT_CHARS = 8_000;
const MAX_GATE_OUTPUT_CHARS = 2_000;

export interface PullRequestLinks {
  /** Where the task's logs are read (the API's `/v1/tasks/{id}/logs`, or the dashboard). */
  logsUrl?: string;
}

/** The pull request's title: the first line of the prompt. */
export function pullRequestTitle(task: Pick<Task, 'prompt'>, max = 72): string {
  const line = task.prompt.trim().split('\n')[0]?.trim() ?? '';
  const title = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  return `AutoDev: ${title || 'change'}`;
}

/**
 * The pull request's description: what was asked, what the agent says it did, who did it at what
 * cost, how the quality gates went, the review's verdict, and where the logs are.
 */
export function renderPullRequestBody(
  task: Task,
  gates: readonly GateResult[],
  review?: ReviewVerdict,
  links: PullRequestLinks = {},
): string {
  const out: string[] = [];
  const summary = task.summary?.trim();
  out.push('## Summary', '', summary ? quoteFree(summary, 10_000) : '_The agent gave no summary._', '');

  const prompt = task.prompt.trim();
  const shown = prompt.length > MAX_PROMPT_CHARS ? `${prompt.slice(0, MAX_PROMPT_CHARS)}…` : prompt;
  const fence = fenceFor(shown);
  out.push('<details><summary>Task prompt</summary>', '', `${fence}text`, shown, fence, '', '</details>', '');

  const attempts = task.attempts.length;
  const usage = task.usage;
  out.push(
    '## Run',
    '',
    '| | |',
    '|---|---|',
    `| Task | \`${task.id}\` |`,
    `| Role | ${cell(task.role)} |`,
    `| Provider | ${cell(task.provider ?? task.attempts.at(-1)?.provider ?? 'unknown')} |`,
    `| Attempts | ${attempts}${attemptTrail(task)} |`,
    `| Tokens | ${usage.inputTokens.toLocaleString('en-US')} in, ${usage.outputTokens.toLocaleString('en-US')} out |`,
    `| Cost | $${usage.costUsd.toFixed(4)} |`,
  );
  if (task.commit) out.push(`| Commit | \`${task.commit.slice(0, 12)}\` |`);
  if (links.logsUrl) out.push(`| Logs | [task logs](${links.logsUrl}) |`);
  out.push('');

  out.push('## Quality gates', '');
  if (gates.length === 0) out.push('_No gates are configured (`.autodev.yml`)._', '');
  else {
    out.push('| Gate | Result | Time |', '|---|---|---|');
    for (const g of gates) {
      const result = g.ok ? '✅ passed' : g.timedOut ? '⏱️ timed out' : `❌ exit ${g.exitCode}`;
      out.push(`| ${cell(g.name)} | ${result} | ${(g.durationMs / 1000).toFixed(1)} s |`);
    }
    out.push('');
    for (const g of gates.filter((x) => !x.ok)) {
      const output = tail(g.output, MAX_GATE_OUTPUT_CHARS);
      const f = fenceFor(output);
      out.push(
        `<details><summary>${escapeHtml(g.name)} output</summary>`,
        '',
        `${f}text`,
        output,
        f,
        '',
        '</details>',
        '',
      );
    }
  }

  if (review) {
    out.push(
      '## Review',
      '',
      `**${review.verdict === 'approve' ? 'Approved' : 'Changes requested'}** by the review agent. ${quoteFree(review.summary, 5_000)}`,
      '',
    );
    if (review.comments.length > 0)
      out.push(`${review.comments.length} comment(s) on lines of the change.`, '');
  }

  out.push('---', `_Opened by AutoDev for task \`${task.id}\`._`);
  const body = out.join('\n');
  return body.length > MAX_BODY_CHARS ? `${body.slice(0, MAX_BODY_CHARS)}\n\n… (cut)` : body;
}

function attemptTrail(task: Task): string {
  if (task.attempts.length < 2) return '';
  const trail = task.attempts.map((a) => `${a.provider}: ${a.errorClass ?? a.outcome}`).join(', ');
  return ` (${cell(trail)})`;
}

/** Text for a table cell: no pipes or line breaks. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function quoteFree(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
