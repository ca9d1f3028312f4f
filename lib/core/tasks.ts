import { createHash } from 'node:crypto';
import { authorize, can, type Principal } from './access.js';
import { batchGraph, parseBatch, submissionOf } from './batches.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from './errors.js';
import { earlierClaims } from './file-claims.js';
import { newTaskId } from './ids.js';
import { transition } from './lifecycle.js';
import type { LogLine, TaskStore } from './ports.js';
import { checkQuotas, type QuotaPolicy, UNLIMITED } from './quotas.js';
import { checkRepo, type RepoPolicy, STRICT_REPO_POLICY } from './repo-policy.js';
import { type AgentRole, resolveRole } from './roles.js';
import { checkPin } from './routing.js';
import {
  AUTO_PROVIDER,
  describeIssues,
  isTerminal,
  MAX_PROMPT_CHARS,
  type Task,
  TaskStatus,
  TaskSubmission,
  type ValidSubmission,
  ZERO_USAGE,
} from './schemas.js';
import { checkDailyBudget, type TenantSpendStore } from './tenant-spend.js';
import { formatTraceParent, newTraceContext, parseTraceParent, type TraceContext } from './trace-context.js';
import { startEpic } from './workflow-engine.js';

/** Told about tasks that became ready, so that they are dispatched without polling. */
export interface TaskNotifier {
  taskReady(task: Task): Promise<void>;
  cancelRequested(task: Task): Promise<void>;
}

export interface TaskServiceDeps {
  store: TaskStore;
  notifier: TaskNotifier;
  roles: Record<string, AgentRole>;
  knownProviders: readonly string[];
  /** Which repositories a tenant may name (default: public https and ssh hosts only). */
  repoPolicy?: RepoPolicy;
  idempotencyTtlSeconds?: number;
  /** Tasks per hour, tasks not yet ended and USD per day, per tenant (default: unlimited). */
  quotas?: QuotaPolicy;
  /** Each tenant's model spend per day (the `usdPerDay` quota); none: that quota is not checked here. */
  spend?: TenantSpendStore;
  now?: () => Date;
  /**
   * The `traceparent` of the span the submission runs in (the API's server span), so that the task's
   * trace is the request's; absent or not one: a fresh trace.
   */
  traceParent?: () => string | undefined;
}

export function hashBody(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The use cases behind the task API. Pure orchestration over ports. */
export class TaskService {
  private readonly now: () => Date;

  constructor(private readonly deps: TaskServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async submit(
    principal: Principal,
    body: unknown,
    idempotencyKey?: string,
  ): Promise<{ task: Task; created: boolean }> {
    authorize(principal, 'task:create');
    if (body && typeof body === 'object' && typeof (body as { prompt?: unknown }).prompt === 'string') {
      const len = (body as { prompt: string }).prompt.length;
      if (len > MAX_PROMPT_CHARS) {
        throw new PayloadTooLargeError(`The prompt has ${len} characters; the limit is ${MAX_PROMPT_CHARS}.`);
      }
    }
    const parsed = TaskSubmission.safeParse(body);
    if (!parsed.success) {
      throw new ValidationError('The task is not valid.', describeIssues(parsed.error));
    }
    const input = parsed.data;
    const role = this.checkEntry(principal, input);
    const found = await Promise.all(input.dependsOn.map((d) => this.deps.store.get(principal.tenant, d)));
    let status = initialStatus(input, found, 'dependsOn');
    // serialized by declared files: the earlier tasks on them run first
    const waitsFor = await earlierClaims(this.deps.store, principal.tenant, input);
    if (waitsFor.length > 0) status = 'blocked';
    const now = this.now();
    await checkQuotas(this.deps.store, principal.tenant, this.deps.quotas ?? UNLIMITED, now);
    if (this.deps.spend)
      await checkDailyBudget(this.deps.spend, this.deps.quotas ?? UNLIMITED, principal.tenant, now);
    const trace = parseTraceParent(this.deps.traceParent?.()) ?? newTraceContext();
    const task = this.draft(principal, input, role, {
      id: newTaskId(now.getTime()),
      status,
      now,
      trace,
      extra: waitsFor.length > 0 ? { waitsFor } : undefined,
    });
    const result = await this.deps.store.create(task, this.idempotency(principal, idempotencyKey, body));
    if (result.created && result.task.status === 'queued') await this.deps.notifier.taskReady(result.task);
    return result;
  }

  /**
   * Submits up to MAX_BATCH_TASKS tasks at once (`POST /v1/tasks:batch`), all or none: every entry
   * is checked (a 400 names `tasks.<i>.<field>`), `dependsOn` names keys of the batch or existing
   * tasks (no cycles), the quotas count every task, and the tasks are stored in one transaction.
   * Idempotent like `submit`: the same key and body give the same tasks.
   */
  async submitBatch(
    principal: Principal,
    body: unknown,
    idempotencyKey?: string,
  ): Promise<{ tasks: Task[]; created: boolean }> {
    authorize(principal, 'task:create');
    const entries = parseBatch(body);
    const roles = entries.map((e, i) => withField(`tasks.${i}.`, () => this.checkEntry(principal, e)));
    const graph = batchGraph(entries);
    const statuses = await Promise.all(
      entries.map(async (entry, i) => {
        const external = graph.external[i] ?? [];
        const found = await Promise.all(external.map((d) => this.deps.store.get(principal.tenant, d)));
        const status = initialStatus({ ...entry, dependsOn: external }, found, `tasks.${i}.dependsOn`);
        // serialized by declared files against the tasks stored before the batch
        const waitsFor = await earlierClaims(this.deps.store, principal.tenant, submissionOf(entry));
        return {
          status: (graph.internal[i]?.length ?? 0) > 0 || waitsFor.length > 0 ? 'blocked' : status,
          waitsFor,
        };
      }),
    );
    const now = this.now();
    const quotas = this.deps.quotas ?? UNLIMITED;
    await checkQuotas(this.deps.store, principal.tenant, quotas, now, entries.length);
    if (this.deps.spend) await checkDailyBudget(this.deps.spend, quotas, principal.tenant, now);
    const trace = parseTraceParent(this.deps.traceParent?.()) ?? newTraceContext();
    // ids in the batch's order, a millisecond apart: they sort (and list) as the batch lists them
    const ids = entries.map((_, i) => newTaskId(now.getTime() + i));
    const tasks = entries.map((entry, i) => {
      const dependsOn = entry.dependsOn.map((d) => {
        const j = entries.findIndex((e) => e.key === d);
        return j >= 0 ? (ids[j] as string) : d;
      });
      return this.draft(principal, { ...submissionOf(entry), dependsOn }, roles[i] as AgentRole, {
        id: ids[i] as string,
        status: statuses[i]?.status as TaskStatus,
        now,
        trace,
        extra: {
          key: entry.key,
          ...(statuses[i]?.waitsFor.length ? { waitsFor: statuses[i]?.waitsFor } : {}),
        },
      });
    });
    const result = await this.deps.store.createBatch(
      tasks,
      this.idempotency(principal, idempotencyKey, body),
    );
    if (result.created) {
      for (const task of result.tasks) if (task.status === 'queued') await this.deps.notifier.taskReady(task);
    }
    return result;
  }

  /** Checks what the schema cannot: the repository, the agent role and the provider. */
  /** The idempotency record of a submission made with an `Idempotency-Key`. */
  private idempotency(principal: Principal, idempotencyKey: string | undefined, body: unknown) {
    if (!idempotencyKey) return undefined;
    return {
      key: `${principal.tenant}#${idempotencyKey}`,
      bodyHash: hashBody(body),
      ttlSeconds: this.deps.idempotencyTtlSeconds ?? 86_400,
    };
  }

  private checkEntry(principal: Principal, input: ValidSubmission): AgentRole {
    checkRepo(input.repo, principal.tenant, this.deps.repoPolicy ?? STRICT_REPO_POLICY);
    const role = resolveRole(this.deps.roles, input.role);
    checkPin(input.provider, input.pin);
    if (
      input.provider &&
      input.provider !== AUTO_PROVIDER &&
      !this.deps.knownProviders.includes(input.provider)
    ) {
      throw new ValidationError(
        `Unknown provider "${input.provider}". Known providers: ${this.deps.knownProviders.join(', ')}.`,
        [{ field: 'provider', message: 'unknown provider' }],
      );
    }
    return role;
  }

  /** The task record of a checked submission. */
  private draft(
    principal: Principal,
    input: ValidSubmission,
    role: AgentRole,
    at: { id: string; status: TaskStatus; now: Date; trace: TraceContext; extra?: Partial<Task> },
  ): Task {
    const { now, trace } = at;
    return {
      id: at.id,
      tenant: principal.tenant,
      status: at.status,
      repo: input.repo,
      baseBranch: input.baseBranch,
      prompt: input.prompt,
      role: role.name,
      requestedProvider: input.provider,
      ...(input.pin ? { pin: true } : {}),
      priority: input.priority,
      dependsOn: input.dependsOn,
      limits: input.limits,
      labels: input.labels,
      ...(input.files && { files: input.files }),
      ...(input.onDependencyFailure ? { onDependencyFailure: input.onDependencyFailure } : {}),
      ...(input.decompose
        ? { decompose: true, approval: input.approval === true, epic: { stage: 'planning' as const } }
        : {}),
      ...at.extra,
      createdBy: principal.subject,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      attempts: [],
      usage: { ...ZERO_USAGE },
      version: 0,
      traceId: trace.traceId,
      traceParent: formatTraceParent(trace),
    };
  }

  async get(principal: Principal, id: string): Promise<Task> {
    const task = await this.read(principal, id);
    if (!task.epic?.children) return task;
    // an epic shows its sub-tasks as they are now
    const children = await Promise.all(task.epic.children.map((c) => this.deps.store.get(task.tenant, c)));
    const subtasks = children.flatMap((c) => (c ? [{ id: c.id, key: c.key, status: c.status }] : []));
    return { ...task, subtasks };
  }

  /** The task as stored (no `subtasks`: what a change starts from). */
  private async read(principal: Principal, id: string): Promise<Task> {
    authorize(principal, 'task:read');
    const task = await this.deps.store.get(principal.tenant, id);
    if (!task) throw new NotFoundError(`No task ${id}.`);
    return task;
  }

  /**
   * Approves an epic's plan (`POST /v1/tasks/{id}/approve`): its sub-tasks are stored and start.
   * Admins and operators may approve any epic of the tenant, a submitter the epics it submitted.
   */
  async approve(principal: Principal, id: string): Promise<Task> {
    const task = await this.read(principal, id);
    const own = can(principal, 'task:create') && task.createdBy === principal.subject;
    if (!can(principal, 'task:approve') && !own) {
      throw new ForbiddenError(
        `Access role "${principal.role}" may approve only the epics it submitted; task ${id} is ${task.createdBy ?? 'another'}'s.`,
      );
    }
    if (task.status !== 'blocked' || task.epic?.stage !== 'awaiting_approval') {
      const where = task.epic ? `its plan is ${task.epic.stage.replace('_', ' ')}` : 'it is no epic';
      throw new ConflictError(
        `Task ${id} has no plan waiting for approval: ${where} (status ${task.status}).`,
      );
    }
    const now = this.now();
    const approved: Task = {
      ...task,
      epic: { ...task.epic, stage: 'planned', approvedBy: principal.subject },
      version: task.version + 1,
      updatedAt: now.toISOString(),
    };
    await this.deps.store.put(approved, task.version);
    const { store } = this.deps;
    const children = await startEpic(
      {
        getById: (c) => store.get(principal.tenant, c),
        get: (t, c) => store.get(t, c),
        put: (t, v) => store.put(t, v),
        createBatch: (t, i) => store.createBatch(t, i),
      },
      approved,
      now,
    );
    for (const child of children) if (child.status === 'queued') await this.deps.notifier.taskReady(child);
    return this.get(principal, id);
  }

  async list(
    principal: Principal,
    query: {
      status?: string;
      role?: string;
      provider?: string;
      label?: string;
      limit?: string;
      cursor?: string;
    },
  ) {
    authorize(principal, 'task:read');
    const status = query.status === undefined ? undefined : TaskStatus.safeParse(query.status);
    if (status && !status.success) {
      throw new ValidationError(`Unknown status "${query.status}".`, [
        { field: 'status', message: 'unknown status' },
      ]);
    }
    const limit = query.limit === undefined ? 50 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new ValidationError('limit must be an integer from 1 to 500.', [
        { field: 'limit', message: 'out of range' },
      ]);
    }
    for (const field of ['provider', 'label'] as const) {
      if ((query[field]?.length ?? 0) > 64) {
        throw new ValidationError(`${field} must be at most 64 characters.`, [
          { field, message: 'too long' },
        ]);
      }
    }
    return this.deps.store.list(principal.tenant, {
      status: status?.data,
      role: query.role,
      provider: query.provider || undefined,
      label: query.label || undefined,
      limit,
      cursor: query.cursor,
    });
  }

  /**
   * Cancels a task. A task that has not started ends `cancelled` at once; a running one is marked
   * and its executor stops the agent and records the end. A finished task cannot be cancelled.
   */
  async cancel(principal: Principal, id: string): Promise<Task> {
    authorize(principal, 'task:cancel');
    for (let i = 0; i < 5; i++) {
      const task = await this.read(principal, id);
      if (isTerminal(task.status)) throw new ConflictError(`Task ${id} already ended ${task.status}.`);
      if (task.cancelRequested) return task;
      const now = this.now();
      const next =
        task.status === 'running'
          ? { ...task, cancelRequested: true, version: task.version + 1, updatedAt: now.toISOString() }
          : transition(
              task,
              'cancelled',
              {
                error: { code: 'cancelled', message: `Cancelled by ${principal.subject}.` },
                lease: undefined,
                notBefore: undefined,
              },
              now,
            );
      try {
        await this.deps.store.put(next, task.version);
      } catch (err) {
        if (err instanceof ConflictError) continue; // moved under us: read again
        throw err;
      }
      if (next.status === 'running') await this.deps.notifier.cancelRequested(next);
      await this.cancelSubtasks(principal, next);
      return next;
    }
    throw new ConflictError(`Task ${id} is changing too fast to cancel; try again.`);
  }

  /** A cancelled epic's sub-tasks that have not ended are cancelled with it (they ran for it alone). */
  private async cancelSubtasks(principal: Principal, epic: Task): Promise<void> {
    for (const child of epic.epic?.children ?? []) {
      try {
        await this.cancel(principal, child);
      } catch (err) {
        // ended meanwhile, or gone (retention): nothing to stop
        if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
      }
    }
  }

  /** Runs a failed or cancelled task again, with a fresh set of attempts (its history is kept). */
  async retry(principal: Principal, id: string): Promise<Task> {
    authorize(principal, 'task:retry');
    const task = await this.read(principal, id);
    if (task.status !== 'failed' && task.status !== 'cancelled') {
      throw new ConflictError(`Task ${id} is ${task.status}; only failed or cancelled tasks can be retried.`);
    }
    const next = transition(
      task,
      'queued',
      {
        error: undefined,
        cancelRequested: undefined,
        notBefore: undefined,
        durationMs: undefined,
        provider: undefined,
        retryFrom: task.attempts.length,
        // an epic plans again
        ...(task.decompose ? { epic: { stage: 'planning' as const } } : {}),
      },
      this.now(),
    );
    await this.deps.store.put(next, task.version);
    await this.deps.notifier.taskReady(next);
    return next;
  }

  async logs(
    principal: Principal,
    id: string,
    afterSeq: number,
    limit = 1000,
  ): Promise<{ task: Task; lines: LogLine[]; lastSeq: number }> {
    const task = await this.read(principal, id);
    const { lines, lastSeq } = await this.deps.store.readLogs(task.id, afterSeq, limit);
    return { task, lines, lastSeq };
  }
}

/**
 * The status a new task starts in, from its dependencies as stored: queued when there are none or
 * all succeeded, blocked while one has not ended. A dependency that does not exist is a 400; one
 * that failed or was cancelled too, unless the task runs anyway (`onDependencyFailure: "run"`).
 */
export function initialStatus(
  input: Pick<ValidSubmission, 'dependsOn' | 'onDependencyFailure'>,
  found: readonly (Task | undefined)[],
  field: string,
): TaskStatus {
  let status: TaskStatus = 'queued';
  input.dependsOn.forEach((dep, i) => {
    const task = found[i];
    if (!task) {
      throw new ValidationError(`${field} names task ${dep}, which does not exist.`, [
        { field, message: `unknown task ${dep}` },
      ]);
    }
    const ended = task.status === 'failed' || task.status === 'cancelled';
    if (ended && input.onDependencyFailure !== 'run') {
      throw new ValidationError(`${field} names task ${dep}, which ended ${task.status}.`, [
        { field, message: `task ${dep} is ${task.status}` },
      ]);
    }
    if (!isTerminal(task.status)) status = 'blocked';
  });
  return status;
}

/** Runs `fn`, prefixing the fields a ValidationError names (a batch entry's `tasks.<i>.`). */
function withField<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const details = Array.isArray(err.details)
      ? (err.details as { field: string; message: string }[]).map((d) => ({ ...d, field: prefix + d.field }))
      : [{ field: prefix.slice(0, -1), message: err.message }];
    throw new ValidationError(`${prefix.slice(0, -1)}: ${err.message}`, details);
  }
}
