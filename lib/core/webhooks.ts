import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { TaskSubmission } from './schemas.js';

/**
 * GitHub webhook intake: `issues` events that carry the `autodev` label and `issue_comment` events
 * with `/autodev <prompt>` become task submissions. Pure: no I/O but the delivery log port.
 */

/** Remembers webhook delivery ids, so that a replayed or redelivered delivery is acted on once. */
export interface DeliveryLog {
  /**
   * Records `id` and tells whether it had been recorded before (true: a replay). Atomic: of two
   * concurrent calls with one id, exactly one gets false.
   */
  seen(id: string): Promise<boolean>;
}

/** A delivery log in memory, bounded: the oldest ids are forgotten first. For tests and one process. */
export class MemoryDeliveryLog implements DeliveryLog {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {}

  async seen(id: string): Promise<boolean> {
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return false;
  }
}

export const SIGNATURE_HEADER = 'x-hub-signature-256';
export const DELIVERY_HEADER = 'x-github-delivery';
export const EVENT_HEADER = 'x-github-event';

/** `sha256=<hex HMAC-SHA256 of the raw body>`, as GitHub signs deliveries. */
export function signGithubPayload(secret: string, rawBody: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** Checks `X-Hub-Signature-256` against the raw body, in constant time. */
export function verifyGithubSignature(
  secret: string,
  rawBody: string | Buffer,
  signature: string | undefined,
): boolean {
  if (!secret || !signature) return false;
  const expected = Buffer.from(signGithubPayload(secret, rawBody), 'utf8');
  const given = Buffer.from(signature.trim(), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface WebhookOptions {
  /** The label that hands an issue to AutoDev. Default `autodev`. */
  label?: string;
  /** The comment command. Default `/autodev`. */
  command?: string;
  /**
   * Authors whose comments may start tasks (GitHub's `author_association`). Anyone can comment on a
   * public repository; tasks cost money. Default OWNER, MEMBER, COLLABORATOR.
   */
  allowedAssociations?: readonly string[];
  /** Fields added to every submission (role, provider, priority, limits). */
  defaults?: Partial<Pick<TaskSubmission, 'role' | 'provider' | 'priority' | 'limits'>>;
}

export interface WebhookInput {
  /** Request headers; names in any case. */
  headers: Readonly<Record<string, string | undefined>>;
  /** The body exactly as received: the signature is over these bytes. */
  rawBody: string | Buffer;
  /** The webhook's shared secret. */
  secret: string;
  deliveries: DeliveryLog;
  options?: WebhookOptions;
}

export interface WebhookOutcome {
  status: number;
  body: Record<string, unknown>;
  /** A task to submit (as `POST /v1/tasks` takes it), when the event asks for one. */
  submission?: TaskSubmission;
  /** The key to submit it under, so that one delivery never makes two tasks. */
  idempotencyKey?: string;
}

const Label = z.object({ name: z.string() }).passthrough();
const Repository = z
  .object({
    full_name: z.string(),
    clone_url: z.string(),
    default_branch: z.string().optional(),
  })
  .passthrough();
const Issue = z
  .object({
    number: z.number().int(),
    title: z.string(),
    body: z.string().nullish(),
    html_url: z.string(),
    labels: z.array(Label).default([]),
    pull_request: z.unknown().optional(),
    updated_at: z.string().optional(),
  })
  .passthrough();
const IssuesEvent = z
  .object({ action: z.string(), issue: Issue, label: Label.optional(), repository: Repository })
  .passthrough();
const IssueCommentEvent = z
  .object({
    action: z.string(),
    issue: Issue,
    comment: z
      .object({
        id: z.number().int().optional(),
        body: z.string(),
        html_url: z.string(),
        author_association: z.string().default('NONE'),
        user: z.object({ login: z.string(), type: z.string().optional() }).passthrough(),
      })
      .passthrough(),
    repository: Repository,
  })
  .passthrough();

const DEFAULT_ASSOCIATIONS = ['OWNER', 'MEMBER', 'COLLABORATOR'];
const MAX_BODY_CHARS = 60_000;

/**
 * Handles one delivery to `POST /v1/webhooks/github`. 401 for a missing or wrong signature, 400 for
 * a body that is not a GitHub event, 200 with `ignored` for replays and events that ask for nothing,
 * 202 with a `submission` for events that ask for a task.
 */
export async function handleGithubWebhook(input: WebhookInput): Promise<WebhookOutcome> {
  const header = (name: string) => {
    for (const [k, v] of Object.entries(input.headers)) if (k.toLowerCase() === name) return v;
    return undefined;
  };
  if (!input.secret) {
    return reply(503, 'webhook_not_configured', 'No webhook secret is configured.');
  }
  if (!verifyGithubSignature(input.secret, input.rawBody, header(SIGNATURE_HEADER))) {
    return reply(401, 'unauthorized', `The ${SIGNATURE_HEADER} signature is missing or wrong.`);
  }
  const delivery = header(DELIVERY_HEADER)?.trim();
  const event = header(EVENT_HEADER)?.trim();
  if (!delivery || !event) {
    return reply(
      400,
      'validation_failed',
      `The ${DELIVERY_HEADER} and ${EVENT_HEADER} headers are required.`,
    );
  }
  if (event === 'ping') return { status: 200, body: { ok: true, pong: true } };
  const text = strictUtf8(input.rawBody);
  if (text === undefined) return reply(400, 'validation_failed', 'The body is not UTF-8.');
  let payload: unknown;
  try {
    payload = parsePayload(text, header('content-type'));
  } catch {
    return reply(400, 'validation_failed', 'The body is not a JSON GitHub event.');
  }
  if (await input.deliveries.seen(delivery)) {
    return { status: 200, body: { ignored: 'replayed delivery', delivery } };
  }
  const opts = input.options ?? {};
  const mapped =
    event === 'issues'
      ? fromIssue(payload, opts)
      : event === 'issue_comment'
        ? fromComment(payload, opts)
        : { ignored: `event ${event} is not handled` };
  if ('error' in mapped) return reply(400, 'validation_failed', mapped.error);
  if ('ignored' in mapped) return { status: 200, body: { ignored: mapped.ignored, delivery } };
  // the delivery id is not signed: a copy of a signed body under a new id is the same event
  if (await input.deliveries.seen(`event:${mapped.eventKey}`)) {
    return { status: 200, body: { ignored: 'event already delivered', delivery } };
  }
  return {
    status: 202,
    body: { accepted: true, delivery },
    submission: { ...opts.defaults, ...mapped.submission },
    idempotencyKey: `github-event:${mapped.eventKey}`,
  };
}

/**
 * What a submission is made of, and the key of the event it comes from, from the signed body: the
 * action, the repository, the issue or comment (and, for a label, the issue's `updated_at`, so that
 * a label removed and added again asks again).
 */
type Mapped = { submission: TaskSubmission; eventKey: string } | { ignored: string } | { error: string };

function fromIssue(payload: unknown, opts: WebhookOptions): Mapped {
  const parsed = IssuesEvent.safeParse(payload);
  if (!parsed.success) return { error: 'The issues event lacks its issue or repository.' };
  const { action, issue, label, repository } = parsed.data;
  const wanted = opts.label ?? 'autodev';
  // an issue opened with labels is delivered as `opened` and then `labeled` once per label: acting on
  // `labeled` alone makes one task either way
  if (action !== 'labeled' || label?.name !== wanted) {
    return { ignored: `issues.${action} without the ${wanted} label being added` };
  }
  if (issue.pull_request !== undefined) return { ignored: 'the issue is a pull request' };
  const prompt = [issue.title.trim(), issue.body?.trim() ?? '', `GitHub issue: ${issue.html_url}`]
    .filter(Boolean)
    .join('\n\n');
  return {
    submission: {
      repo: repository.clone_url,
      prompt: clip(prompt),
      labels: labelsFor(issue, repository.full_name),
    },
    eventKey: `issues.labeled:${repository.full_name}#${issue.number}:${wanted}:${issue.updated_at ?? ''}`,
  };
}

function fromComment(payload: unknown, opts: WebhookOptions): Mapped {
  const parsed = IssueCommentEvent.safeParse(payload);
  if (!parsed.success) return { error: 'The issue_comment event lacks its issue, comment or repository.' };
  const { action, issue, comment, repository } = parsed.data;
  if (action !== 'created') return { ignored: `issue_comment.${action}` };
  if (comment.user.type === 'Bot') return { ignored: 'comments by bots do not start tasks' };
  const command = commandPrompt(comment.body, opts.command ?? '/autodev');
  if (command === undefined) return { ignored: 'the comment has no command' };
  const allowed = opts.allowedAssociations ?? DEFAULT_ASSOCIATIONS;
  if (!allowed.includes(comment.author_association)) {
    return { ignored: `${comment.user.login} (${comment.author_association}) may not start tasks` };
  }
  if (!command) return { error: 'The command needs a prompt: /autodev <what to do>.' };
  const context = [`Context, GitHub issue #${issue.number}: ${issue.title.trim()}`, issue.body?.trim() ?? '']
    .filter(Boolean)
    .join('\n\n');
  const prompt = `${command}\n\n${context}\n\nRequested in ${comment.html_url}`;
  return {
    submission: {
      repo: repository.clone_url,
      prompt: clip(prompt),
      labels: labelsFor(issue, repository.full_name),
    },
    eventKey: `issue_comment.created:${repository.full_name}#${issue.number}:${comment.id ?? comment.html_url}`,
  };
}

/** The text after the command: on the command's line and the lines after it. Undefined: no command. */
export function commandPrompt(body: string, command: string): string | undefined {
  const lines = body.replace(/\r\n/g, '\n').split('\n');
  const i = lines.findIndex((l) => l.trim() === command || l.trim().startsWith(`${command} `));
  if (i < 0) return undefined;
  const first = (lines[i] as string).trim().slice(command.length).trim();
  return [first, ...lines.slice(i + 1)].join('\n').trim();
}

function labelsFor(issue: z.output<typeof Issue>, fullName: string): string[] {
  const own = issue.labels.map((l) => l.name.slice(0, 64)).filter(Boolean);
  const ref = `github:${fullName}#${issue.number}`.slice(0, 64);
  return [...new Set([ref, ...own])].slice(0, 20);
}

function clip(text: string): string {
  return text.length > MAX_BODY_CHARS ? `${text.slice(0, MAX_BODY_CHARS)}…` : text;
}

/** The body as text, or undefined when its bytes are not UTF-8 (never replaced by U+FFFD). */
function strictUtf8(rawBody: string | Buffer): string | undefined {
  if (typeof rawBody === 'string') return rawBody;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(rawBody);
  } catch {
    return undefined;
  }
}

function parsePayload(text: string, contentType: string | undefined): unknown {
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new Error('no payload field');
    return JSON.parse(payload);
  }
  return JSON.parse(text);
}

function reply(status: number, code: string, message: string): WebhookOutcome {
  return { status, body: { error: { code, message } } };
}
