import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { BatchEntry, MAX_BATCH_TASKS } from '../core/batches.js';
import { FullAccessChange } from '../core/role-settings.js';
import { Schedule, ScheduleCreation } from '../core/schedules.js';
import { Task, TaskStatus, TaskSubmission } from '../core/schemas.js';
import {
  AuditPage,
  ErrorBody,
  Health,
  Me,
  ProviderList,
  ProviderStatsPage,
  RoleSetting,
  SchedulePage,
  TaskPage,
} from './schemas.js';

/** The error statuses an operation may answer, each with the shared error body. */
type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 503;

const ERROR_TEXT: Record<ErrorStatus, string> = {
  400: 'The request is not valid (`validation_failed`; `details` names each field).',
  401: 'No token, or one that is expired, not signed by a trusted key, or for another audience.',
  403: "The token's role may not do this (`forbidden`).",
  404: 'No such resource in your tenant, or the route is not served here (`not_found`).',
  409: 'The resource is not in a state that allows this, or the idempotency key was used for another body.',
  413: 'The body is larger than 1 MiB, or the prompt longer than 100,000 characters (`payload_too_large`).',
  429: 'A quota of your tenant is used up (`quota_exceeded`): `Retry-After` says when to ask again.',
  500: 'Something failed on the server; the body says nothing of what (`internal`).',
  503: 'Not configured here.',
};

const requestId = z.string().meta({ description: 'The id of this call, also in its audit entry.' });
const ID_HEADERS = { 'x-request-id': requestId };
const headers = (shape: Record<string, z.ZodType> = {}) => z.object({ ...ID_HEADERS, ...shape });

function errorResponse(status: ErrorStatus, text?: string): ResponseConfig {
  return {
    description: text ?? ERROR_TEXT[status],
    headers: headers(
      status === 429
        ? { 'retry-after': z.string().meta({ description: 'Seconds to wait before asking again.' }) }
        : {},
    ),
    content: { 'application/json': { schema: ErrorBodyRef } },
  };
}

const registry = new OpenAPIRegistry();
const ErrorBodyRef = ErrorBody.meta({ id: 'Error' });
const TaskRef = Task.meta({ id: 'Task' });
const TaskSubmissionRef = TaskSubmission.meta({ id: 'TaskSubmission' });
const TaskPageRef = TaskPage.meta({ id: 'TaskPage' });
const BatchSubmissionRef = z
  .object({ tasks: z.array(BatchEntry).min(1).max(MAX_BATCH_TASKS) })
  .strict()
  .meta({ id: 'BatchSubmission' });
const ScheduleRef = Schedule.meta({ id: 'Schedule' });
const ScheduleCreationRef = ScheduleCreation.meta({ id: 'ScheduleCreation' });
const SchedulePageRef = SchedulePage.meta({ id: 'SchedulePage' });
const AuditPageRef = AuditPage.meta({ id: 'AuditPage' });
const ProviderListRef = ProviderList.meta({ id: 'ProviderList' });
const bearer = registry.registerComponent('securitySchemes', 'bearer', {
  type: 'http',
  scheme: 'bearer',
  bearerFormat: 'JWT',
  description:
    'An OIDC access token (on AWS: checked by the API Gateway JWT authorizer) or, locally, one from `autodev token`. Its claims carry the tenant and the access role.',
});

const jsonBody = (schema: z.ZodType, description: string): ResponseConfig => ({
  description,
  headers: headers(),
  content: { 'application/json': { schema } },
});
const taskId = z.object({
  taskId: z.string().min(1).max(64).meta({ description: 'A task id.', example: 't01jf3v8k2m9q' }),
});
const scheduleId = z.object({ scheduleId: z.string().meta({ description: 'A schedule id.' }) });
const cursorQuery = {
  cursor: z.string().optional().meta({ description: 'The `nextCursor` of the page before.' }),
};

type Operation = Omit<RouteConfig, 'method' | 'path' | 'responses' | 'operationId'> & {
  operationId: string;
  responses: RouteConfig['responses'];
  /** Error statuses beyond 401 (every operation with a token may answer 401). */
  errors?: ErrorStatus[];
  /** Open: no token. */
  open?: boolean;
};

/**
 * Every operation of the API, keyed `METHOD path`. A test checks these are exactly the routes the
 * handler (and the local platform's server) answers.
 */
export const OPERATIONS: Record<string, Operation> = {
  'GET /healthz': {
    operationId: 'getHealth',
    open: true,
    tags: ['meta'],
    summary: 'Health check',
    responses: { 200: jsonBody(Health, 'The API answers.') },
  },
  'GET /openapi.json': {
    operationId: 'getOpenApiDocument',
    open: true,
    tags: ['meta'],
    summary: 'This description (OpenAPI 3.1)',
    responses: {
      200: {
        description: 'The OpenAPI document.',
        content: { 'application/json': { schema: z.object({}).passthrough() } },
      },
    },
  },
  'GET /docs': {
    operationId: 'getDocsPage',
    open: true,
    tags: ['meta'],
    summary: 'This description as a page to read',
    responses: {
      200: { description: 'An HTML page (no script).', content: { 'text/html': { schema: z.string() } } },
    },
  },
  'GET /metrics': {
    operationId: 'getMetrics',
    tags: ['meta'],
    summary: 'Prometheus metrics (local platform only; on AWS metrics go to CloudWatch)',
    errors: [403, 404],
    responses: {
      200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } },
    },
  },
  'POST /v1/tasks': {
    operationId: 'submitTask',
    tags: ['tasks'],
    summary: 'Submit a task',
    description:
      'Queues a task. With the same `Idempotency-Key` and body, answers the task made the first time (200) instead of a new one. `priority: "high"` needs an admin or operator token.',
    request: {
      headers: z.object({
        'idempotency-key': z
          .string()
          .max(200)
          .optional()
          .meta({ description: 'Submit at most once for this key.' }),
      }),
      body: { required: true, content: { 'application/json': { schema: TaskSubmissionRef } } },
    },
    errors: [400, 403, 409, 413, 429],
    responses: {
      201: { ...jsonBody(TaskRef, 'Queued.'), headers: headers({ location: z.string() }) },
      200: jsonBody(TaskRef, 'Submitted before with this idempotency key: the task made then.'),
    },
  },
  'POST /v1/tasks:batch': {
    operationId: 'submitTaskBatch',
    tags: ['tasks'],
    summary: 'Submit up to 100 tasks at once, all or none',
    description:
      'Each task carries a `key` of your choosing; `dependsOn` names keys of the batch or ids of tasks that exist. Every task is checked before any is stored: one that is not valid, a key named twice, an unknown key or id, or a cycle answers 400 naming `tasks.<i>.<field>`, and nothing is stored. Quotas count every task of the batch. With the same `Idempotency-Key` and body, answers the tasks made the first time (200).',
    request: {
      headers: z.object({
        'idempotency-key': z
          .string()
          .max(200)
          .optional()
          .meta({ description: 'Submit the batch at most once for this key.' }),
      }),
      body: { required: true, content: { 'application/json': { schema: BatchSubmissionRef } } },
    },
    errors: [400, 403, 409, 413, 429],
    responses: {
      201: jsonBody(z.object({ tasks: z.array(TaskRef) }), 'Stored, in the order of the batch.'),
      200: jsonBody(
        z.object({ tasks: z.array(TaskRef) }),
        'Submitted before with this idempotency key: the tasks made then.',
      ),
    },
  },
  'GET /v1/tasks': {
    operationId: 'listTasks',
    tags: ['tasks'],
    summary: "List your tenant's tasks, newest first",
    request: {
      query: z.object({
        status: TaskStatus.optional(),
        role: z.string().optional(),
        provider: z
          .string()
          .optional()
          .meta({ description: 'The provider that ran the task or was asked for.' }),
        label: z.string().optional().meta({ description: "One of the task's labels." }),
        limit: z.number().int().min(1).max(500).default(50),
        ...cursorQuery,
      }),
    },
    errors: [400, 403],
    responses: { 200: jsonBody(TaskPageRef, 'A page of tasks.') },
  },
  'GET /v1/tasks/{taskId}': {
    operationId: 'getTask',
    tags: ['tasks'],
    summary: 'A task: status, attempts, usage, branch, pull request, gates, review',
    request: { params: taskId },
    errors: [400, 403, 404],
    responses: { 200: jsonBody(TaskRef, 'The task.') },
  },
  'POST /v1/tasks/{taskId}/cancel': {
    operationId: 'cancelTask',
    tags: ['tasks'],
    summary: 'Cancel a task (its agent is stopped if it runs)',
    request: { params: taskId },
    errors: [400, 403, 404, 409],
    responses: {
      202: jsonBody(TaskRef, 'Cancelled, or marked to be (a running task ends `cancelled` soon).'),
    },
  },
  'POST /v1/tasks/{taskId}/retry': {
    operationId: 'retryTask',
    tags: ['tasks'],
    summary: 'Run a failed or cancelled task again (operator)',
    request: { params: taskId },
    errors: [400, 403, 404, 409],
    responses: { 202: jsonBody(TaskRef, 'Queued again.') },
  },
  'POST /v1/tasks/{taskId}/approve': {
    operationId: 'approveTaskPlan',
    tags: ['tasks'],
    summary: "Approve an epic's plan: its sub-tasks are stored and start",
    description:
      'For a task submitted with `decompose: true, approval: true` whose planning agent has answered (`epic.stage: "awaiting_approval"`, the plan in `epic.plan`). Admins and operators may approve any epic of the tenant, a submitter the epics it submitted. Another task, or one not waiting for approval, answers 409.',
    request: { params: taskId },
    errors: [400, 403, 404, 409],
    responses: { 200: jsonBody(TaskRef, 'Approved: the epic with its sub-tasks (`subtasks`).') },
  },
  'GET /v1/tasks/{taskId}/logs': {
    operationId: 'getTaskLogs',
    tags: ['tasks'],
    summary: "A task's log",
    description:
      'Lines as `<ISO time> <text>`. With `follow=1` the local platform streams lines as they come until the task ends; on AWS the lines so far are answered (poll with `after`).',
    request: {
      params: taskId,
      query: z.object({
        after: z.number().int().min(0).optional().meta({
          description: 'Only lines after this sequence number (`x-autodev-last-seq` of the answer before).',
        }),
        follow: z
          .enum(['1', 'true'])
          .optional()
          .meta({ description: 'Stream until the task ends (local platform).' }),
      }),
    },
    errors: [400, 403, 404],
    responses: {
      200: {
        description: 'The log.',
        headers: headers({
          'x-autodev-last-seq': z
            .string()
            .meta({ description: 'The sequence number of the last line answered.' }),
          'x-autodev-task-status': TaskStatus,
        }),
        content: {
          'text/plain': { schema: z.string() },
          'application/json': {
            schema: z.object({ status: TaskStatus, lastSeq: z.number().int(), lines: z.array(z.unknown()) }),
          },
          'text/event-stream': {
            schema: z.string().meta({ description: 'Local platform: events `log`, `status`, `end`.' }),
          },
        },
      },
    },
  },
  'GET /v1/me': {
    operationId: 'getMe',
    tags: ['meta'],
    summary: 'The caller: tenant, role, subject and the actions the role allows',
    responses: { 200: jsonBody(Me.meta({ id: 'Me' }), 'The caller.') },
  },
  'GET /v1/stats': {
    operationId: 'getStats',
    tags: ['tasks'],
    summary: "The tenant's figures: per day, per provider and role, and the queue",
    request: { query: z.object({ days: z.number().int().min(0).max(90).default(14) }) },
    errors: [400, 403, 404],
    responses: {
      200: jsonBody(z.object({}).passthrough(), 'The figures (`days`, `byProviderRole`, `queue`).'),
    },
  },
  'GET /v1/roles/{role}/full-access': {
    operationId: 'getRoleFullAccess',
    tags: ['roles'],
    summary: "Whether an agent role's agents get the machine's network in your tenant",
    request: { params: z.object({ role: z.string() }) },
    errors: [400, 403, 404],
    responses: { 200: jsonBody(RoleSetting.meta({ id: 'RoleSetting' }), 'The setting.') },
  },
  'PUT /v1/roles/{role}/full-access': {
    operationId: 'setRoleFullAccess',
    tags: ['roles'],
    summary: 'Turn full-access mode on or off for an agent role (admin)',
    request: {
      params: z.object({ role: z.string() }),
      body: { required: true, content: { 'application/json': { schema: FullAccessChange } } },
    },
    errors: [400, 403, 404, 413],
    responses: { 200: jsonBody(RoleSetting.meta({ id: 'RoleSetting' }), 'The setting as it is now.') },
  },
  'GET /v1/providers': {
    operationId: 'listProviders',
    tags: ['providers'],
    summary: 'Providers: circuit breaker, recent success rate (locally also version and credentials)',
    errors: [403, 404],
    responses: { 200: jsonBody(ProviderListRef, 'The providers.') },
  },
  'GET /v1/providers/stats': {
    operationId: 'getProviderStats',
    tags: ['providers'],
    summary:
      'The figures routing reads (`provider: "auto"`), per provider and agent role: attempts, success rate, median duration and cost',
    description:
      "From your tenant's attempts of the last `days` days. `successRate` is succeeded / (succeeded + failed): cancelled and abandoned attempts and workspace faults are left out. The medians are of the successful attempts.",
    request: {
      query: z.object({
        days: z.number().int().min(1).max(90).default(7),
        role: z.string().min(1).max(64).optional().meta({ description: 'Only this agent role.' }),
      }),
    },
    errors: [400, 403, 404],
    responses: { 200: jsonBody(ProviderStatsPage.meta({ id: 'ProviderStats' }), 'The figures.') },
  },
  'DELETE /v1/tenants/{tenant}/data': {
    operationId: 'eraseTenantData',
    tags: ['tenants'],
    summary:
      "Erase a tenant's tasks, logs, schedules, idempotency keys, branch records and audit entries older than the legal hold (admin of that tenant)",
    description:
      'Refused with 409 `tasks_not_finished` while any task of the tenant is unfinished (cancel them first). Another tenant answers 404.',
    request: { params: z.object({ tenant: z.string() }) },
    errors: [403, 404, 409],
    responses: {
      200: jsonBody(
        z
          .object({
            tenant: z.string(),
            at: z.string(),
            erased: z.record(z.string(), z.number().int()),
            auditKeptSince: z.string(),
          })
          .meta({ id: 'ErasureReport' }),
        'What was erased, per kind.',
      ),
    },
  },
  'GET /v1/audit': {
    operationId: 'listAuditEntries',
    tags: ['audit'],
    summary: "Your tenant's audit trail, newest first (admin)",
    request: {
      query: z.object({
        action: z.string().optional().meta({ example: 'task.cancel' }),
        subject: z.string().optional(),
        result: z
          .string()
          .optional()
          .meta({ description: 'An HTTP status, or `ok` (below 400), or `refused`.' }),
        since: z.string().optional().meta({ description: 'ISO time, inclusive.' }),
        until: z.string().optional().meta({ description: 'ISO time, inclusive.' }),
        limit: z.number().int().min(1).max(500).default(50),
        ...cursorQuery,
      }),
    },
    errors: [400, 403, 404],
    responses: { 200: jsonBody(AuditPageRef, 'A page of entries.') },
  },
  'POST /v1/schedules': {
    operationId: 'createSchedule',
    tags: ['schedules'],
    summary: 'Submit a task on a schedule (operator)',
    request: { body: { required: true, content: { 'application/json': { schema: ScheduleCreationRef } } } },
    errors: [400, 403, 404, 409, 413],
    responses: { 201: { ...jsonBody(ScheduleRef, 'Created.'), headers: headers({ location: z.string() }) } },
  },
  'GET /v1/schedules': {
    operationId: 'listSchedules',
    tags: ['schedules'],
    summary: "List your tenant's schedules",
    errors: [403, 404],
    responses: { 200: jsonBody(SchedulePageRef, 'The schedules.') },
  },
  'GET /v1/schedules/{scheduleId}': {
    operationId: 'getSchedule',
    tags: ['schedules'],
    summary: 'A schedule',
    request: { params: scheduleId },
    errors: [400, 403, 404],
    responses: { 200: jsonBody(ScheduleRef, 'The schedule.') },
  },
  'DELETE /v1/schedules/{scheduleId}': {
    operationId: 'deleteSchedule',
    tags: ['schedules'],
    summary: 'Delete a schedule (operator)',
    request: { params: scheduleId },
    errors: [400, 403, 404],
    responses: { 204: { description: 'Deleted.', headers: headers() } },
  },
  'POST /v1/webhooks/github': {
    operationId: 'receiveGithubWebhook',
    open: true,
    tags: ['webhooks'],
    summary: 'GitHub webhook: issues labelled `autodev` and `/autodev` comments become tasks',
    description:
      'No token: the `X-Hub-Signature-256` HMAC over the body, with the shared secret, stands for one. A replayed delivery is ignored.',
    request: {
      headers: z.object({
        'x-hub-signature-256': z.string().meta({ example: 'sha256=...' }),
        'x-github-event': z.string().meta({ example: 'issues' }),
        'x-github-delivery': z.string(),
      }),
      body: { required: true, content: { 'application/json': { schema: z.object({}).passthrough() } } },
    },
    errors: [400, 413, 503],
    responses: {
      201: jsonBody(TaskRef, 'A task was submitted.'),
      200: jsonBody(
        z.object({}).passthrough(),
        'Acknowledged: a ping, or an event that starts no task (`ignored` says why), or one already delivered.',
      ),
      202: jsonBody(z.object({}).passthrough(), 'Accepted.'),
      401: errorResponse(401, 'The signature is missing or wrong.'),
      503: errorResponse(503, 'No webhook secret is configured here.'),
    },
  },
};

for (const [key, op] of Object.entries(OPERATIONS)) {
  const [method, path] = key.split(' ') as [string, string];
  const { errors = [], open, responses, ...rest } = op;
  const errorResponses = Object.fromEntries(
    [...(open ? [] : ([401] as const)), ...errors].map((s) => [s, responses[s] ?? errorResponse(s)]),
  );
  registry.registerPath({
    ...rest,
    method: method.toLowerCase() as RouteConfig['method'],
    path,
    security: open ? [] : [{ [bearer.name]: [] }],
    responses: {
      ...responses,
      ...errorResponses,
      500: errorResponse(500),
    },
  });
}

let cached: object | undefined;

/** The OpenAPI 3.1 description of the API, generated from the zod schemas (built once). */
export function openApiDocument(): object {
  cached ??= new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'AutoDev API',
      version: '1',
      description:
        'Queue development tasks for AI coding agents, follow them, cancel and retry them. The same API on the local platform and on AWS. Errors answer `{ "error": { "code", "message", "details"? } }`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'This server' }],
    security: [{ [bearer.name]: [] }],
    tags: [
      { name: 'tasks', description: 'Development tasks and their logs.' },
      { name: 'schedules', description: 'Recurring tasks.' },
      { name: 'providers', description: 'The agent CLIs.' },
      { name: 'audit', description: 'The audit trail.' },
      { name: 'roles', description: 'Settings of agent roles.' },
      { name: 'webhooks', description: 'Tasks from GitHub.' },
      { name: 'meta', description: 'Health, metrics and this description.' },
    ],
  });
  return cached;
}
