import { ValidationError } from './errors.js';

/**
 * One line of the audit trail: a mutating call, or a refused one, as the API answered it. Entries
 * are only ever appended; nothing updates or deletes them.
 */
export interface AuditEntry {
  /** Unique in its store; a later entry of a tenant has a greater id in its store's order. */
  id: string;
  /** ISO 8601 time the call was answered. */
  at: string;
  /** The caller's tenant; null when the call carried no trusted token (401). */
  tenant: string | null;
  /** The token's subject; null when unknown (401). */
  subject: string | null;
  /** What was asked, e.g. `task.create`, `task.cancel`, `schedule.delete`. */
  action: string;
  /** What it was asked of (a task or schedule id), when there is one. */
  target: string | null;
  /** The HTTP status answered. */
  status: number;
  /** `ok`, or the error code answered (`forbidden`, `not_found`, `quota_exceeded`, ...). */
  outcome: string;
  requestId: string;
  method: string;
  path: string;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

/** What `GET /v1/audit` may filter on; the tenant is always the caller's. */
export interface AuditFilters {
  action?: string;
  subject?: string;
  /** A status (403), or `ok` (below 400) or `refused` (400 and above). */
  result?: number | 'ok' | 'refused';
  /** ISO times, inclusive. */
  since?: string;
  until?: string;
}

export interface AuditQuery extends AuditFilters {
  limit: number;
  /** The `nextCursor` of the page before. */
  cursor?: string;
}

export const DEFAULT_AUDIT_LIMIT = 50;
export const MAX_AUDIT_LIMIT = 500;

const TASK_ID = /^\/v1\/tasks\/([^/]+)(?:\/(cancel|retry|logs))?$/;
const SCHEDULE_ID = /^\/v1\/schedules\/([^/]+)$/;
const ROLE_FULL_ACCESS = /^\/v1\/roles\/([^/]+)\/full-access$/;
const TENANT_DATA = /^\/v1\/tenants\/([^/]+)\/data$/;

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The action a request stands for and the id it names, from its method and path alone. */
export function describeRequest(method: string, path: string): { action: string; target: string | null } {
  const m = method.toUpperCase();
  if (path === '/v1/tasks') return { action: m === 'POST' ? 'task.create' : 'task.list', target: null };
  if (path === '/v1/tasks:batch') return { action: 'task.create_batch', target: null };
  if (path === '/v1/schedules') {
    return { action: m === 'POST' ? 'schedule.create' : 'schedule.list', target: null };
  }
  if (path === '/v1/audit') return { action: 'audit.read', target: null };
  if (path === '/v1/providers') return { action: 'provider.list', target: null };
  if (path === '/v1/webhooks/github') return { action: 'webhook.github', target: null };
  const task = path.match(TASK_ID);
  if (task) {
    const sub = task[2];
    const action =
      sub === 'logs' ? 'task.logs' : sub ? `task.${sub}` : m === 'GET' ? 'task.read' : 'task.other';
    return { action, target: decoded(task[1] as string) };
  }
  const role = path.match(ROLE_FULL_ACCESS);
  if (role)
    return { action: m === 'GET' ? 'role.read' : 'role.full_access', target: decoded(role[1] as string) };
  const tenantData = path.match(TENANT_DATA);
  if (tenantData) {
    return {
      action: m === 'DELETE' ? 'tenant.erase' : 'tenant.other',
      target: decoded(tenantData[1] as string),
    };
  }
  const schedule = path.match(SCHEDULE_ID);
  if (schedule) {
    const action = m === 'DELETE' ? 'schedule.delete' : m === 'GET' ? 'schedule.read' : 'schedule.other';
    return { action, target: decoded(schedule[1] as string) };
  }
  return { action: 'unknown', target: null };
}

/** Whether an answered call goes in the trail: every mutating call, and every refused one. */
export function isAudited(method: string, status: number): boolean {
  return method.toUpperCase() !== 'GET' || status >= 400;
}

function isoTime(field: string, value: string): string {
  const t = Date.parse(value);
  if (!Number.isFinite(t)) {
    throw new ValidationError(`${field} must be an ISO 8601 time.`, [{ field, message: 'not a time' }]);
  }
  return new Date(t).toISOString();
}

function text(field: string, value: string): string {
  if (!value || value.length > 200) {
    throw new ValidationError(`${field} must be 1 to 200 characters.`, [{ field, message: 'bad length' }]);
  }
  return value;
}

/** `GET /v1/audit`'s query string as a query; 400 naming the field for anything malformed. */
export function parseAuditQuery(q: Record<string, string | undefined>): AuditQuery {
  const out: AuditQuery = { limit: DEFAULT_AUDIT_LIMIT };
  if (q.limit !== undefined) {
    const n = Number(q.limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_AUDIT_LIMIT) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_AUDIT_LIMIT}.`, [
        { field: 'limit', message: 'out of range' },
      ]);
    }
    out.limit = n;
  }
  if (q.cursor !== undefined) {
    // opaque: each store reads its own, and refuses (400) one it did not give
    if (!/^[A-Za-z0-9_-]{1,400}$/.test(q.cursor)) {
      throw new ValidationError('cursor is not one this API gave.', [
        { field: 'cursor', message: 'malformed' },
      ]);
    }
    out.cursor = q.cursor;
  }
  if (q.action !== undefined) out.action = text('action', q.action);
  if (q.subject !== undefined) out.subject = text('subject', q.subject);
  if (q.result !== undefined) {
    const r = q.result;
    if (r === 'ok' || r === 'refused') out.result = r;
    else if (/^[1-5]\d\d$/.test(r)) out.result = Number(r);
    else {
      throw new ValidationError('result must be an HTTP status, "ok" or "refused".', [
        { field: 'result', message: 'not a status' },
      ]);
    }
  }
  if (q.since !== undefined) out.since = isoTime('since', q.since);
  if (q.until !== undefined) out.until = isoTime('until', q.until);
  return out;
}
