import { describe, expect, it } from '@jest/globals';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import { TaskService } from '../../../lib/core/tasks.js';
import {
  formatTraceParent,
  newTraceContext,
  parseTraceParent,
  readySince,
  traceContextFromXray,
  xrayTraceId,
} from '../../../lib/core/trace-context.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context (W3C traceparent)', () => {
  it('reads and writes a traceparent', () => {
    expect(parseTraceParent(TP)).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      sampled: true,
    });
    expect(formatTraceParent(parseTraceParent(TP) as never)).toBe(TP);
    expect(parseTraceParent(TP.replace(/-01$/, '-00'))?.sampled).toBe(false);
  });

  it.each([
    ['', 'empty'],
    ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'an all-zero trace id'],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', 'an all-zero span id'],
    ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'another version'],
    ['00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', 'a short trace id'],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01;evil', 'trailing text'],
  ])('refuses %j (%s)', (value) => {
    expect(parseTraceParent(value)).toBeUndefined();
  });

  it('makes fresh, sampled, valid contexts', () => {
    const a = newTraceContext();
    expect(parseTraceParent(formatTraceParent(a))).toEqual(a);
    expect(newTraceContext().traceId).not.toBe(a.traceId);
  });

  it('maps an X-Ray trace header to the same 128-bit trace id, and back', () => {
    const c = traceContextFromXray(
      'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
    );
    expect(c).toEqual({
      traceId: '5759e988bd862e3fe1be46a994272793',
      spanId: '53995c3f42cd8ad8',
      sampled: true,
    });
    expect(xrayTraceId(c?.traceId ?? '')).toBe('1-5759e988-bd862e3fe1be46a994272793');
    expect(traceContextFromXray('Root=1-5759e988-bd862e3fe1be46a994272793')).toBeUndefined();
    expect(traceContextFromXray(undefined)).toBeUndefined();
  });

  it('says since when a task has waited: creation, the last attempt, or its retry wait', () => {
    const createdAt = '2026-12-02T10:00:00.000Z';
    expect(readySince({ createdAt, attempts: [] })).toBe(Date.parse(createdAt));
    const ended = { createdAt, attempts: [{ endedAt: '2026-12-02T10:05:00.000Z' }] };
    expect(readySince(ended)).toBe(Date.parse('2026-12-02T10:05:00.000Z'));
    expect(readySince({ ...ended, notBefore: Date.parse('2026-12-02T10:06:00.000Z') })).toBe(
      Date.parse('2026-12-02T10:06:00.000Z'),
    );
  });

  it('a submitted task carries its trace: the caller’s span as parent, or a fresh trace', async () => {
    const store = new SqliteTaskStore(':memory:');
    const make = (traceParent?: () => string | undefined) =>
      new TaskService({
        store,
        notifier: { taskReady: async () => undefined, cancelRequested: async () => undefined },
        roles: BUILT_IN_ROLES,
        knownProviders: ['claude'],
        traceParent,
      });
    const principal = { tenant: 'acme', role: 'submitter' as const, subject: 'u' };
    const body = { repo: 'https://example.com/acme/app.git', prompt: 'do it' };
    const traced = (await make(() => TP).submit(principal, body)).task;
    expect([traced.traceId, traced.traceParent]).toEqual(['4bf92f3577b34da6a3ce929d0e0e4736', TP]);
    const fresh = (await make(() => 'not a traceparent').submit(principal, body)).task;
    expect(fresh.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(parseTraceParent(fresh.traceParent)?.traceId).toBe(fresh.traceId);
    store.close();
  });
});
