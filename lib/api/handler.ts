import { createHash } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { allowedActions, authorize, authorizePriority, type Principal } from '../core/access.js';
import { describeRequest, isAudited, parseAuditQuery } from '../core/audit.js';
import type { TenantErasure } from '../core/erasure.js';
import { NotFoundError, PayloadTooLargeError, toHttpError, ValidationError } from '../core/errors.js';
import type { AuditLog, Authenticator } from '../core/ports.js';
import { QuotaExceededError } from '../core/quotas.js';
import { parseFullAccessChange, type RoleSettingsService } from '../core/role-settings.js';
import type { ScheduleService } from '../core/schedules.js';
import type { AccessRole, Priority } from '../core/schemas.js';
import {
  type ProviderFigures,
  parseProviderStatsQuery,
  parseStatsQuery,
  type TaskStatsSource,
  windowStart,
} from '../core/stats.js';
import type { TaskService } from '../core/tasks.js';
import { type DeliveryLog, handleGithubWebhook, type WebhookOptions } from '../core/webhooks.js';
import { docsPage } from './docs-page.js';
import { openApiDocument } from './openapi.js';
import type { ProviderRoleFigures, ProviderStatsPage } from './schemas.js';

/** Largest request body accepted, in bytes (API Gateway allows 10 MB; tasks never need that). */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiDeps {
  service: TaskService;
  authenticator: Authenticator;
  logger: Logger;
  /** Access roles that may ask for `priority: "high"` (default: admin and operator). */
  highPriorityRoles?: readonly AccessRole[];
  /** What is known of each provider (installed, credentials, breaker); absent where not served. */
  providers?: () => Promise<unknown[]>;
  /** `GET /v1/stats`: the tenant's figures over time; absent where not served (the route answers 404). */
  stats?: TaskStatsSource;
  /** `/v1/schedules` (recurring tasks); absent where not served (the routes then answer 404). */
  schedules?: ScheduleService;
  /**
   * Where every mutating call and every refused one is recorded, and what `GET /v1/audit` reads;
   * absent where not served (nothing is recorded and the route answers 404).
   */
  auditLog?: AuditLog;
  /** `/v1/roles/{role}/full-access` (full-access mode); absent where not served (404). */
  roleSettings?: RoleSettingsService;
  /** `DELETE /v1/tenants/{tenant}/data`; absent where not served (the route then answers 404). */
  erasure?: TenantErasure;
  /**
   * `POST /v1/webhooks/github` (no token: the delivery's signature is checked with `secret`).
   * Absent where not served (the route then answers 503).
   */
  githubWebhook?: {
    /** The shared secret; empty: the route answers 503. */
    secret: string;
    /** The tenant that tasks from webhooks belong to. */
    tenant: string;
    /** Delivery ids already acted on: a replay is ignored. */
    deliveries: DeliveryLog;
    options?: WebhookOptions;
  };
}

/**
 * One row of `GET /v1/providers/stats`: the figures routing reads. `successRate` counts what says
 * something about the provider: succeeded / (succeeded + failed), cancelled and abandoned attempts
 * and workspace faults left out; medians are of the successful attempts.
 */
function routingFiguresOf(s: ProviderFigures): ProviderRoleFigures {
  const outcomes = s.succeeded + s.failed;
  return {
    provider: s.provider,
    role: s.role,
    attempts: s.attempts,
    succeeded: s.succeeded,
    failed: s.failed,
    successRate: outcomes > 0 ? s.succeeded / outcomes : null,
    medianMs: s.medianMs,
    medianCostUsd: s.medianCostUsd,
    costUsd: s.costUsd,
  };
}

/** Who submits tasks that webhooks ask for. */
export const WEBHOOK_SUBJECT = 'github-webhook';

export type ApiEvent = APIGatewayProxyEventV2 & {
  requestContext: APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { jwt?: { claims?: Record<string, unknown> } };
  };
};
export type ApiResult = APIGatewayProxyStructuredResultV2;

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** The body's bytes as received (a webhook's signature is over these bytes). */
function rawBodyOf(event: ApiEvent): Buffer {
  const raw = event.body
    ? event.isBase64Encoded
      ? Buffer.from(event.body, 'base64')
      : Buffer.from(event.body, 'utf8')
    : Buffer.alloc(0);
  if (raw.length > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(`The request body is larger than ${MAX_BODY_BYTES} bytes.`);
  }
  return raw;
}

function parseBody(event: ApiEvent): unknown {
  const bytes = rawBodyOf(event);
  let raw: string;
  try {
    raw = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ValidationError('The body is not UTF-8.');
  }
  if (!raw.trim()) throw new ValidationError('The request needs a JSON body.');
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ValidationError(`The body is not valid JSON: ${(err as Error).message}`);
  }
}

/** `Accept: application/json` (before any text type): the logs as `{status, lastSeq, lines}`. */
function wantsJson(event: ApiEvent): boolean {
  const accept = event.headers?.accept ?? '';
  return /application\/json/.test(accept) && !/^\s*text\//.test(accept);
}

/**
 * A read answered with an ETag of its body; the same ETag in `If-None-Match` gets 304 and no body,
 * so a client that polls (the dashboard) moves bytes only when something changed.
 */
function withETag(result: ApiResult, event: ApiEvent): ApiResult {
  if (event.requestContext.http.method.toUpperCase() !== 'GET' || (result.statusCode ?? 200) !== 200)
    return result;
  if (typeof result.body !== 'string') return result;
  const etag = `W/"${createHash('sha256').update(result.body).digest('base64url').slice(0, 27)}"`;
  const headers = { ...result.headers, etag, 'cache-control': 'private, no-cache' };
  const asked = event.headers?.['if-none-match'];
  if (asked?.split(',').some((t) => t.trim() === etag)) {
    const { 'content-type': _type, ...rest } = headers as Record<string, string>;
    return { statusCode: 304, headers: rest };
  }
  return { ...result, headers };
}

/** The answer with `x-request-id`: the id its audit entry carries. */
function withRequestId(result: ApiResult, event: ApiEvent): ApiResult {
  return { ...result, headers: { ...result.headers, 'x-request-id': event.requestContext.requestId } };
}

/** The `error.code` of an error answered without throwing (a webhook's refusal), or `refused`. */
function errorCodeOf(result: ApiResult): string {
  try {
    const code = (JSON.parse(result.body ?? '') as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : 'refused';
  } catch {
    return 'refused';
  }
}

/** A path segment as an id: a malformed percent-escape is the client's error (400), not a crash. */
function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError('The id in the path has a malformed percent-escape.', [
      { field: 'id', message: 'malformed percent-escape' },
    ]);
  }
}

/** The priority a body asks for, if it names one (what else it says is validated later). */
function priorityIn(body: unknown): Priority | undefined {
  const p = body && typeof body === 'object' ? (body as { priority?: unknown }).priority : undefined;
  return p === 'high' ? 'high' : undefined;
}

/** The priority each entry of a batch body asks for (what else they say is validated later). */
function batchPriorities(body: unknown): (Priority | undefined)[] {
  const tasks = body && typeof body === 'object' ? (body as { tasks?: unknown }).tasks : undefined;
  return Array.isArray(tasks) ? tasks.slice(0, 1000).map(priorityIn) : [];
}

/** What one call found out about itself, for its audit entry. */
interface CallContext {
  principal?: Principal;
  target?: string;
  /** The action recorded, when the body says more than the path (enable or disable). */
  action?: string;
  /** The trace of the task the call made or named, for the log line. */
  traceId?: string;
}

/** One call as a route sees it. */
interface OpenCall {
  deps: ApiDeps;
  event: ApiEvent;
  ctx: CallContext;
  /** The path's `{name}` segments, decoded. */
  params: Record<string, string>;
  query: Record<string, string | undefined>;
}
/** A call whose token was checked. */
interface Call extends OpenCall {
  principal: Principal;
}

/** One route the handler answers: the single list that `/openapi.json` is checked against. */
export type ApiRoute = {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI path template, e.g. `/v1/tasks/{taskId}`. */
  path: string;
  /** Whether these deps serve it (absent: always); one not served answers 404. */
  served?: (deps: ApiDeps) => boolean;
} & (
  | { open: true; run: (c: OpenCall) => Promise<ApiResult> }
  | { open: false; run: (c: Call) => Promise<ApiResult> }
);

const open = (
  method: ApiRoute['method'],
  path: string,
  run: (c: OpenCall) => Promise<ApiResult>,
): ApiRoute => ({
  method,
  path,
  open: true,
  run,
});
const authed = (
  method: ApiRoute['method'],
  path: string,
  run: (c: Call) => Promise<ApiResult>,
  served?: (deps: ApiDeps) => boolean,
): ApiRoute => ({ method, path, open: false, run, served });

/** Every route of the API, open ones (no token) first. */
export const API_ROUTES: readonly ApiRoute[] = [
  open('GET', '/healthz', async () => json(200, { ok: true })),
  open('GET', '/openapi.json', async () => json(200, openApiDocument(), { 'cache-control': 'no-cache' })),
  open('GET', '/docs', async () => docsPageResult()),
  // GitHub sends no token: the signature over the raw body stands for one
  open('POST', '/v1/webhooks/github', (c) => githubWebhook(c)),
  authed('GET', '/v1/tasks', async (c) => json(200, await c.deps.service.list(c.principal, c.query))),
  authed('POST', '/v1/tasks', async ({ deps, event, ctx, principal }) => {
    const body = parseBody(event);
    authorize(principal, 'task:create');
    authorizePriority(principal, priorityIn(body), deps.highPriorityRoles);
    const { task, created } = await deps.service.submit(principal, body, event.headers?.['idempotency-key']);
    ctx.target = task.id;
    ctx.traceId = task.traceId;
    return json(created ? 201 : 200, task, { location: `/v1/tasks/${task.id}` });
  }),
  authed('POST', '/v1/tasks:batch', async ({ deps, event, ctx, principal }) => {
    const body = parseBody(event);
    authorize(principal, 'task:create');
    for (const [i, p] of batchPriorities(body).entries())
      authorizePriority(principal, p, deps.highPriorityRoles, `tasks.${i}.priority`);
    const { tasks, created } = await deps.service.submitBatch(
      principal,
      body,
      event.headers?.['idempotency-key'],
    );
    ctx.target = tasks[0]?.id;
    ctx.traceId = tasks[0]?.traceId;
    return json(created ? 201 : 200, { tasks });
  }),
  authed('GET', '/v1/tasks/{taskId}', async (c) =>
    json(200, await c.deps.service.get(c.principal, c.params.taskId as string)),
  ),
  authed('POST', '/v1/tasks/{taskId}/cancel', async (c) =>
    json(202, await c.deps.service.cancel(c.principal, c.params.taskId as string)),
  ),
  authed('POST', '/v1/tasks/{taskId}/approve', async (c) =>
    json(200, await c.deps.service.approve(c.principal, c.params.taskId as string)),
  ),
  authed('POST', '/v1/tasks/{taskId}/retry', async (c) =>
    json(202, await c.deps.service.retry(c.principal, c.params.taskId as string)),
  ),
  authed('GET', '/v1/tasks/{taskId}/logs', async ({ deps, event, principal, params, query }) => {
    const after = query.after === undefined ? 0 : Number(query.after);
    if (!Number.isInteger(after) || after < 0)
      throw new ValidationError('after must be a non-negative integer.');
    const { task, lines, lastSeq } = await deps.service.logs(principal, params.taskId as string, after);
    if (wantsJson(event))
      return json(200, {
        status: task.status,
        lastSeq,
        // each line names the task's trace, as the text form does
        lines: task.traceId ? lines.map((l) => ({ ...l, traceId: task.traceId })) : lines,
      });
    return {
      statusCode: 200,
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        'x-autodev-last-seq': String(lastSeq),
        'x-autodev-task-status': task.status,
      },
      // each line names the task's trace (logfmt `trace_id=`, as log tools link lines to traces)
      body: lines
        .map((l) => `${l.at} ${task.traceId ? `trace_id=${task.traceId} ` : ''}${l.text}\n`)
        .join(''),
    };
  }),
  authed('GET', '/v1/me', async ({ principal }) =>
    json(200, { ...principal, actions: allowedActions(principal) }),
  ),
  authed(
    'GET',
    '/v1/stats',
    async ({ deps, principal, query }) => {
      authorize(principal, 'task:read');
      return json(200, await deps.stats?.stats(principal.tenant, parseStatsQuery(query), new Date()));
    },
    (deps) => deps.stats !== undefined,
  ),
  authed(
    'GET',
    '/v1/roles/{role}/full-access',
    async ({ deps, principal, params }) =>
      json(200, await roleSettingsOf(deps).read(principal, params.role as string)),
    (deps) => deps.roleSettings !== undefined,
  ),
  authed(
    'PUT',
    '/v1/roles/{role}/full-access',
    async ({ deps, event, ctx, principal, params }) => {
      const enabled = parseFullAccessChange(parseBody(event));
      ctx.action = enabled ? 'role.full_access.enable' : 'role.full_access.disable';
      return json(200, await roleSettingsOf(deps).setFullAccess(principal, params.role as string, enabled));
    },
    (deps) => deps.roleSettings !== undefined,
  ),
  authed(
    'GET',
    '/v1/providers',
    async ({ deps, principal }) => {
      authorize(principal, 'task:read');
      return json(200, { items: await deps.providers?.() });
    },
    (deps) => deps.providers !== undefined,
  ),
  authed(
    'GET',
    '/v1/providers/stats',
    async ({ deps, principal, query }) => {
      authorize(principal, 'task:read');
      const q = parseProviderStatsQuery(query);
      const now = new Date();
      const items = (await deps.stats?.providerStats(principal.tenant, q, now)) ?? [];
      const page: ProviderStatsPage = {
        tenant: principal.tenant,
        since: windowStart(now, q.days).toISOString().slice(0, 10),
        days: q.days,
        items: items.map(routingFiguresOf),
      };
      return json(200, page);
    },
    (deps) => deps.stats !== undefined,
  ),
  authed(
    'GET',
    '/v1/audit',
    async ({ deps, principal, query }) => {
      authorize(principal, 'audit:read');
      return json(200, await deps.auditLog?.list(principal.tenant, parseAuditQuery(query)));
    },
    (deps) => deps.auditLog !== undefined,
  ),
  authed(
    'GET',
    '/v1/schedules',
    async (c) => json(200, await schedulesOf(c).list(c.principal)),
    hasSchedules,
  ),
  authed(
    'POST',
    '/v1/schedules',
    async (c) => {
      const body = parseBody(c.event);
      authorize(c.principal, 'schedule:manage');
      const task = body && typeof body === 'object' ? (body as { task?: unknown }).task : undefined;
      authorizePriority(c.principal, priorityIn(task), c.deps.highPriorityRoles, 'task.priority');
      const created = await schedulesOf(c).create(c.principal, body);
      c.ctx.target = created.id;
      return json(201, created, { location: `/v1/schedules/${created.id}` });
    },
    hasSchedules,
  ),
  authed(
    'GET',
    '/v1/schedules/{scheduleId}',
    async (c) => json(200, await schedulesOf(c).get(c.principal, c.params.scheduleId as string)),
    hasSchedules,
  ),
  authed(
    'DELETE',
    '/v1/schedules/{scheduleId}',
    async (c) => {
      await schedulesOf(c).delete(c.principal, c.params.scheduleId as string);
      return { statusCode: 204 };
    },
    hasSchedules,
  ),
  authed(
    'DELETE',
    '/v1/tenants/{tenant}/data',
    async ({ deps, principal, params }) =>
      json(200, await deps.erasure?.erase(principal, params.tenant as string)),
    (deps) => deps.erasure !== undefined,
  ),
];

function hasSchedules(deps: ApiDeps): boolean {
  return deps.schedules !== undefined;
}
function roleSettingsOf(deps: ApiDeps): RoleSettingsService {
  if (!deps.roleSettings) throw new NotFoundError('Role settings are not served here.');
  return deps.roleSettings;
}
function schedulesOf(c: OpenCall): ScheduleService {
  if (!c.deps.schedules) throw new NotFoundError('Schedules are not served here.');
  return c.deps.schedules;
}

/** A route's path template as a pattern: each `{name}` one non-empty segment. */
function patternOf(template: string): RegExp {
  const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '([^/]+)');
  return new RegExp(`^${source}$`);
}
const COMPILED = API_ROUTES.map((r) => ({
  route: r,
  pattern: patternOf(r.path),
  names: [...r.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string),
}));

/** The route answering `method path` with these deps, and its path parameters (as sent: still escaped). */
export function matchRoute(
  deps: ApiDeps,
  method: string,
  path: string,
): { route: ApiRoute; params: Record<string, string> } | undefined {
  for (const { route, pattern, names } of COMPILED) {
    if (route.method !== method || (route.served && !route.served(deps))) continue;
    const m = path.match(pattern);
    if (!m) continue;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      params[n] = m[i + 1] as string;
    });
    return { route, params };
  }
  return undefined;
}

/** The answer of `GET /docs`: the description as a page of its own, no script, a strict CSP. */
function docsPageResult(): ApiResult {
  const page = docsPage(openApiDocument());
  return {
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': page.csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
    body: page.html,
  };
}

async function githubWebhook(c: OpenCall): Promise<ApiResult> {
  const { deps, event, ctx } = c;
  const hook = deps.githubWebhook;
  if (!hook) {
    return json(503, {
      error: { code: 'webhook_not_configured', message: 'GitHub webhooks are not served here.' },
    });
  }
  const out = await handleGithubWebhook({
    headers: event.headers ?? {},
    rawBody: rawBodyOf(event),
    secret: hook.secret,
    deliveries: hook.deliveries,
    options: hook.options,
  });
  if (!out.submission) return json(out.status, out.body);
  const principal: Principal = { tenant: hook.tenant, role: 'submitter', subject: WEBHOOK_SUBJECT };
  ctx.principal = principal;
  const { task, created } = await deps.service.submit(principal, out.submission, out.idempotencyKey);
  ctx.target = task.id;
  deps.logger.info('task submitted from a GitHub webhook', {
    taskId: task.id,
    delivery: out.body.delivery,
    created,
  });
  return json(created ? 201 : 200, task, { location: `/v1/tasks/${task.id}` });
}

/**
 * The task API as one Lambda handler (API Gateway HTTP API payload v2). The local platform runs the
 * very same handler behind its HTTP server.
 */
export function createApiHandler(deps: ApiDeps) {
  const { authenticator, logger } = deps;

  async function route(event: ApiEvent, ctx: CallContext): Promise<ApiResult> {
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath.replace(/\/+$/, '') || '/';
    const query = event.queryStringParameters ?? {};
    const found = matchRoute(deps, method, path);
    const decoded = () =>
      Object.fromEntries(Object.entries(found?.params ?? {}).map(([k, v]) => [k, decodeId(v)]));
    if (found?.route.open) return found.route.run({ deps, event, ctx, params: decoded(), query });
    const principal = await authenticator.authenticate(
      event.headers ?? {},
      event.requestContext.authorizer?.jwt?.claims,
    );
    ctx.principal = principal;
    if (!found || found.route.open) throw new NotFoundError(`No route for ${method} ${path}.`);
    return found.route.run({ deps, event, ctx, params: decoded(), query, principal });
  }

  /** Appends the call's entry when it is one the trail keeps; a failure to record is logged, not answered. */
  async function audit(event: ApiEvent, ctx: CallContext, status: number, outcome: string): Promise<void> {
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath.replace(/\/+$/, '') || '/';
    if (!deps.auditLog || path === '/healthz' || !isAudited(method, status)) return;
    const { action, target } = describeRequest(method, path);
    const entry = {
      at: new Date().toISOString(),
      tenant: ctx.principal?.tenant ?? null,
      subject: ctx.principal?.subject ?? null,
      action: ctx.action ?? action,
      target: ctx.target ?? target,
      status,
      outcome,
      requestId: event.requestContext.requestId,
      method,
      path: path.slice(0, 1000),
    };
    // a copy in the service's log (CloudWatch Logs on AWS), also when the store is unreachable
    logger.info('audit', ctx.traceId ? { audit: entry, traceId: ctx.traceId } : { audit: entry });
    try {
      await deps.auditLog.append(entry);
    } catch (err) {
      logger.error('the audit entry was not recorded', { err: err as Error, path, status });
    }
  }

  const handler = async (event: ApiEvent, _context: Context): Promise<ApiResult> => {
    const ctx: CallContext = {};
    try {
      const result = await route(event, ctx);
      const status = result.statusCode ?? 200;
      await audit(event, ctx, status, status < 400 ? 'ok' : errorCodeOf(result));
      return withRequestId(withETag(result, event), event);
    } catch (err) {
      const { status, body } = toHttpError(err);
      if (status >= 500) logger.error('request failed', { err: err as Error, path: event.rawPath });
      await audit(event, ctx, status, body.error.code);
      // a quota says when asking again can succeed
      const retryAfter: Record<string, string> =
        err instanceof QuotaExceededError ? { 'retry-after': String(err.retryAfterSeconds) } : {};
      return withRequestId(json(status, body, retryAfter), event);
    }
  };

  return middy(handler).use(injectLambdaContext(logger, { resetKeys: true }));
}
