import type { AuditEntry } from '../core/audit.js';
import type { ErasureReport } from '../core/erasure.js';
import type { Schedule } from '../core/schedules.js';
import { isTerminal, type Task } from '../core/schemas.js';
import type { ProviderInfo } from './providers.js';

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

/** A small client of the AutoDev HTTP API, used by the CLI. */
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
      let parsed: { error?: { code?: string; message?: string; details?: unknown } } = {};
      try {
        parsed = JSON.parse(text);
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

  async submit(body: unknown, idempotencyKey?: string): Promise<Task> {
    const res = await this.call(
      'POST',
      '/v1/tasks',
      body,
      idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    );
    return (await res.json()) as Task;
  }

  async get(id: string): Promise<Task> {
    return (await (await this.call('GET', `/v1/tasks/${encodeURIComponent(id)}`)).json()) as Task;
  }

  async list(q: {
    status?: string;
    role?: string;
    limit?: number;
    cursor?: string;
  }): Promise<{ items: Task[]; nextCursor?: string }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v));
    return (await (await this.call('GET', `/v1/tasks?${qs}`)).json()) as {
      items: Task[];
      nextCursor?: string;
    };
  }

  /** The tenant's audit trail, newest first (admin). */
  async audit(q: {
    action?: string;
    subject?: string;
    result?: string;
    since?: string;
    until?: string;
    limit?: number;
    cursor?: string;
  }): Promise<{ items: AuditEntry[]; nextCursor?: string }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v));
    return (await (await this.call('GET', `/v1/audit?${qs}`)).json()) as {
      items: AuditEntry[];
      nextCursor?: string;
    };
  }

  /** Erases the tenant's data (`DELETE /v1/tenants/{tenant}/data`, admin of that tenant). */
  async eraseTenant(tenant: string): Promise<ErasureReport> {
    return (await (
      await this.call('DELETE', `/v1/tenants/${encodeURIComponent(tenant)}/data`)
    ).json()) as ErasureReport;
  }

  async cancel(id: string): Promise<Task> {
    return (await (await this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`)).json()) as Task;
  }

  async retry(id: string): Promise<Task> {
    return (await (await this.call('POST', `/v1/tasks/${encodeURIComponent(id)}/retry`)).json()) as Task;
  }

  async providers(): Promise<{ items: ProviderInfo[] }> {
    return (await (await this.call('GET', '/v1/providers')).json()) as { items: ProviderInfo[] };
  }

  async logs(id: string): Promise<string> {
    return (await this.call('GET', `/v1/tasks/${encodeURIComponent(id)}/logs`)).text();
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

  async createSchedule(body: unknown): Promise<Schedule> {
    return (await (await this.call('POST', '/v1/schedules', body)).json()) as Schedule;
  }

  async listSchedules(): Promise<{ items: Schedule[] }> {
    return (await (await this.call('GET', '/v1/schedules')).json()) as { items: Schedule[] };
  }

  async deleteSchedule(id: string): Promise<void> {
    await this.call('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
  }
}
