import { z } from 'zod';
import {
  AuditPage,
  ErrorBody,
  ProviderList,
  ProviderStatsPage,
  SchedulePage,
  TaskPage,
} from '../api/schemas.js';
import type { ErasureReport } from '../core/erasure.js';
import { Schedule, type ScheduleCreation } from '../core/schedules.js';
import { isTerminal, Task, type TaskStatus, type TaskSubmission } from '../core/schemas.js';

export class ApiClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiClientError';
  }
}

/**
 * The answer checked against the schema the server answers with (the one /openapi.json describes); it
 * is returned as sent, so fields a newer server adds are kept.
 */
function checked<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiClientError(
      0,
      'unexpected_answer',
      `The server's answer is not ${what}: ${issue?.path.join('.') || '(body)'}: ${issue?.message}. Is the CLI as new as the server?`,
    );
  }
  return body as z.output<S>;
}

/** One read of a task's log. */
export interface LogPage {
  text: string;
  /** The task's status when the log was read. */
  status: TaskStatus;
  /** The sequence number of the last line (ask for lines after it next). */
  lastSeq: number;
}

/** A small client of the AutoDev HTTP API, used by the CLI; typed and checked by the API's zod schemas. */
export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiClientError(
        0,
        'unreachable',
        `Cannot reach AutoDev at ${this.baseUrl} (${(err as Error).cause ?? (err as Error).message}). Is \`npm start\` running?`,
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let parsed: Partial<ErrorBody> = {};
      try {
        const body = ErrorBody.safeParse(JSON.parse(text));
        if (body.success) parsed = body.data;
      } catch {
        // not JSON
      }
      throw new ApiClientError(
        res.status,
        parsed.error?.code ?? 'http_error',
        `${res.status} ${parsed.error?.message ?? text.slice(0, 300)}`,
        parsed.error?.details,
      );
    }
    return res;
  }

  private async json<S extends z.ZodType>(
    schema: S,
    what: string,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<z.output<S>> {
    const res = await this.call(method, path, body, headers);
    let parsed: unknown;
    try {
      parsed = await res.json();
    } catch {
      throw new ApiClientError(
        0,
        'unexpected_answer',
        `The server's answer to ${method} ${path} is not JSON.`,
      );
    }
    return checked(schema, parsed, what);
  }

  submit(body: TaskSubmission, idempotencyKey?: string): Promise<Task> {
    const headers: Record<string, string> = idempotencyKey ? { 'idempotency-key': idempotencyKey } : {};
    return this.json(Task, 'a task', 'POST', '/v1/tasks', body, headers);
  }

  /** `POST /v1/tasks:batch`: the tasks made, in the batch's order. */
  async submitBatch(body: unknown, idempotencyKey?: string): Promise<Task[]> {
    const headers: Record<string, string> = idempotencyKey ? { 'idempotency-key': idempotencyKey } : {};
    const out = await this.json(
      z.object({ tasks: z.array(Task) }),
      'a batch',
      'POST',
      '/v1/tasks:batch',
      body,
      headers,
    );
    return out.tasks;
  }

  get(id: string): Promise<Task> {
    return this.json(Task, 'a task', 'GET', `/v1/tasks/${encodeURIComponent(id)}`);
  }

  list(q: { status?: string; role?: string; limit?: number; cursor?: string }): Promise<TaskPage> {
    return this.json(TaskPage, 'a page of tasks', 'GET', `/v1/tasks?${query(q)}`);
  }

  /** The tenant's audit trail, newest first (admin). */
  audit(q: {
    action?: string;
    subject?: string;
    result?: string;
    since?: string;
    until?: string;
    limit?: number;
    cursor?: string;
  }): Promise<AuditPage> {
    return this.json(AuditPage, 'a page of the audit trail', 'GET', `/v1/audit?${query(q)}`);
  }

  /** Erases the tenant's data (`DELETE /v1/tenants/{tenant}/data`, admin of that tenant). */
  async eraseTenant(tenant: string): Promise<ErasureReport> {
    return (await (
      await this.call('DELETE', `/v1/tenants/${encodeURIComponent(tenant)}/data`)
    ).json()) as ErasureReport;
  }

  /** Approves an epic's plan (`POST /v1/tasks/{id}/approve`). */
  approve(id: string): Promise<Task> {
    return this.json(Task, 'a task', 'POST', `/v1/tasks/${encodeURIComponent(id)}/approve`);
  }

  cancel(id: string): Promise<Task> {
    return this.json(Task, 'a task', 'POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`);
  }

  retry(id: string): Promise<Task> {
    return this.json(Task, 'a task', 'POST', `/v1/tasks/${encodeURIComponent(id)}/retry`);
  }

  providers(): Promise<z.output<typeof ProviderList>> {
    return this.json(ProviderList, 'a list of providers', 'GET', '/v1/providers');
  }

  /** The figures routing reads, per provider and role (`GET /v1/providers/stats`). */
  providerStats(q: { days?: number; role?: string }): Promise<ProviderStatsPage> {
    return this.json(ProviderStatsPage, 'provider figures', 'GET', `/v1/providers/stats?${query(q)}`);
  }

  async logs(id: string): Promise<string> {
    return (await this.logPage(id)).text;
  }

  /** The log so far, with the task's status and the last line's sequence number. */
  async logPage(id: string, after = 0): Promise<LogPage> {
    const res = await this.call('GET', `/v1/tasks/${encodeURIComponent(id)}/logs?after=${after}`);
    return {
      text: await res.text(),
      status: res.headers.get('x-autodev-task-status') as TaskStatus,
      lastSeq: Number(res.headers.get('x-autodev-last-seq') ?? after),
    };
  }

  /**
   * Streams the log until the task ends. The server ends a stream early when the token expires: the
   * task is then asked for, and its 401 thrown (as any other answer that is not the task ended).
   */
  async followLogs(id: string, onChunk: (text: string) => void): Promise<void> {
    const res = await this.call('GET', `/v1/tasks/${encodeURIComponent(id)}/logs?follow=1`);
    if (res.body) {
      const decoder = new TextDecoder();
      for await (const chunk of res.body) onChunk(decoder.decode(chunk as Uint8Array, { stream: true }));
    }
    const task = await this.get(id);
    if (!isTerminal(task.status)) {
      throw new ApiClientError(
        0,
        'stream_ended',
        `The log stream ended while task ${id} is ${task.status}; follow it again.`,
      );
    }
  }

  createSchedule(body: z.input<typeof ScheduleCreation>): Promise<Schedule> {
    return this.json(Schedule, 'a schedule', 'POST', '/v1/schedules', body);
  }

  listSchedules(): Promise<SchedulePage> {
    return this.json(SchedulePage, 'a list of schedules', 'GET', '/v1/schedules');
  }

  async deleteSchedule(id: string): Promise<void> {
    await this.call('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
  }
}

function query(q: Record<string, string | number | undefined>): URLSearchParams {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v));
  return qs;
}
