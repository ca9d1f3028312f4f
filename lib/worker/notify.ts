import { z } from 'zod';
import type { Task } from '../core/schemas.js';

/** Task outcomes that can be announced. */
export const NotifyEvent = z.enum(['succeeded', 'failed', 'cancelled']);
export type NotifyEvent = z.infer<typeof NotifyEvent>;

/** Where one tenant's (or every tenant's) task outcomes are announced. */
export const NotificationTarget = z
  .object({
    /** The tenant whose tasks are announced; `*` for all. */
    tenant: z.string().min(1).default('*'),
    kind: z.enum(['slack', 'teams']),
    /** The incoming webhook URL. It is a credential: prefer `urlSecret`. */
    url: z.url().optional(),
    /** Name of the secret that holds the incoming webhook URL. */
    urlSecret: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    events: z.array(NotifyEvent).min(1).default(['succeeded', 'failed']),
  })
  .strict()
  .refine((t) => Boolean(t.url) !== Boolean(t.urlSecret), 'give exactly one of url and urlSecret');
export type NotificationTarget = z.output<typeof NotificationTarget>;
export const NotificationConfig = z.array(NotificationTarget).default([]);

export interface NoticeLinks {
  /** The task in the dashboard or API. */
  taskUrl?: string;
}

interface Facts {
  title: string;
  text: string;
  facts: [string, string][];
  links: [string, string][];
}

function factsOf(task: Task, links: NoticeLinks): Facts {
  const what = firstLine(task.prompt, 120);
  const title =
    task.status === 'succeeded'
      ? `AutoDev task succeeded: ${what}`
      : task.status === 'cancelled'
        ? `AutoDev task cancelled: ${what}`
        : `AutoDev task failed: ${what}`;
  const text =
    task.status === 'failed'
      ? `${task.error?.code ?? 'failed'}: ${clip(task.error?.message ?? 'no message', 500)}`
      : clip(task.summary?.trim() || 'No summary.', 1000);
  const facts: [string, string][] = [
    ['Repository', task.repo],
    ['Task', task.id],
    ['Role', task.role],
    ['Provider', task.provider ?? '-'],
    ['Attempts', String(task.attempts.length)],
    ['Cost', `$${task.usage.costUsd.toFixed(4)}`],
  ];
  if (task.branch) facts.push(['Branch', task.branch]);
  const out: [string, string][] = [];
  if (task.pullRequest) out.push(['Pull request', task.pullRequest.url]);
  if (links.taskUrl) out.push(['Task', links.taskUrl]);
  return { title, text, facts, links: out };
}

/** A Slack incoming-webhook message (Block Kit, with `text` as the notification fallback). */
export function slackMessage(task: Task, links: NoticeLinks = {}) {
  const f = factsOf(task, links);
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(f.title, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: slackEscape(f.text) } },
    {
      type: 'section',
      fields: f.facts.map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${slackEscape(clip(v, 200))}` })),
    },
  ];
  if (f.links.length > 0) {
    blocks.push({
      type: 'actions',
      elements: f.links.map(([label, url]) => ({
        type: 'button',
        text: { type: 'plain_text', text: label },
        url,
      })),
    });
  }
  return { text: slackEscape(f.title), blocks };
}

/** A Microsoft Teams incoming-webhook (or Workflows) message carrying an Adaptive Card. */
export function teamsMessage(task: Task, links: NoticeLinks = {}) {
  const f = factsOf(task, links);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {
              type: 'TextBlock',
              size: 'Medium',
              weight: 'Bolder',
              wrap: true,
              text: f.title,
              color:
                task.status === 'succeeded' ? 'Good' : task.status === 'failed' ? 'Attention' : 'Default',
            },
            { type: 'TextBlock', wrap: true, text: f.text },
            { type: 'FactSet', facts: f.facts.map(([title, value]) => ({ title, value })) },
          ],
          actions: f.links.map(([title, url]) => ({ type: 'Action.OpenUrl', title, url })),
        },
      },
    ],
  };
}

export interface NotifyOptions {
  /** Secret values by name, for targets with `urlSecret`. */
  secrets?: Readonly<Record<string, string | undefined>>;
  links?: NoticeLinks;
  fetch?: typeof fetch;
  /** Time limit of one post. Default 10 s. */
  timeoutMs?: number;
  /** Pause before the one retry of a post that got 429, 5xx or no answer. Default 1 s. */
  retryDelayMs?: number;
}

export interface NotifyResult {
  kind: 'slack' | 'teams';
  /** The webhook's host, never its URL (the URL is a credential). */
  host: string;
  ok: boolean;
  status?: number;
  error?: string;
}

/** The targets that want to hear about `task` in its current (terminal) status. */
export function targetsFor(task: Task, targets: readonly NotificationTarget[]): NotificationTarget[] {
  const event = NotifyEvent.safeParse(task.status);
  if (!event.success) return [];
  return targets.filter(
    (t) => (t.tenant === '*' || t.tenant === task.tenant) && t.events.includes(event.data),
  );
}

/**
 * Announces a finished task to each target that wants it. Never throws: a chat being down must not
 * fail a task. Each post is retried once on 429, 5xx or no answer.
 */
export async function notifyTaskFinished(
  task: Task,
  targets: readonly NotificationTarget[],
  opts: NotifyOptions = {},
): Promise<NotifyResult[]> {
  const doFetch = opts.fetch ?? fetch;
  return Promise.all(
    targetsFor(task, targets).map(async (t): Promise<NotifyResult> => {
      const url = t.url ?? (t.urlSecret ? opts.secrets?.[t.urlSecret] : undefined);
      if (!url) return { kind: t.kind, host: '-', ok: false, error: `the secret ${t.urlSecret} is not set` };
      let host = '-';
      try {
        host = new URL(url).host;
      } catch {
        return { kind: t.kind, host, ok: false, error: 'the webhook URL is not a URL' };
      }
      const payload = t.kind === 'slack' ? slackMessage(task, opts.links) : teamsMessage(task, opts.links);
      const body = JSON.stringify(payload);
      let last: NotifyResult = { kind: t.kind, host, ok: false };
      for (let round = 0; round < 2; round++) {
        if (round > 0) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
        try {
          const res = await doFetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
          });
          await res.arrayBuffer().catch(() => undefined);
          last = { kind: t.kind, host, ok: res.ok, status: res.status };
          if (res.ok || (res.status !== 429 && res.status < 500)) return last;
        } catch (err) {
          last = { kind: t.kind, host, ok: false, error: (err as Error).message };
        }
      }
      return last;
    }),
  );
}

function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function firstLine(text: string, max: number): string {
  return clip(text.trim().split('\n')[0]?.trim() ?? '', max);
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
