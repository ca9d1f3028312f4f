import { describe, expect, it } from '@jest/globals';
import { describeRequest, isAudited, parseAuditQuery } from '../../../lib/core/audit.js';
import { ValidationError } from '../../../lib/core/errors.js';

describe('audit: what a call stands for', () => {
  it.each([
    ['POST', '/v1/tasks', 'task.create', null],
    ['POST', '/v1/tasks/t1/cancel', 'task.cancel', 't1'],
    ['POST', '/v1/tasks/t%2F1/retry', 'task.retry', 't/1'],
    ['GET', '/v1/tasks/t1', 'task.read', 't1'],
    ['GET', '/v1/tasks/t1/logs', 'task.logs', 't1'],
    ['POST', '/v1/schedules', 'schedule.create', null],
    ['DELETE', '/v1/schedules/s1', 'schedule.delete', 's1'],
    ['GET', '/v1/audit', 'audit.read', null],
    ['POST', '/v1/webhooks/github', 'webhook.github', null],
    ['PUT', '/v1/nothing', 'unknown', null],
  ])('%s %s is %s of %s', (method, path, action, target) => {
    expect(describeRequest(method, path)).toEqual({ action, target });
  });

  it('keeps every mutating call and every refused one, not reads that succeed', () => {
    expect(isAudited('POST', 201)).toBe(true);
    expect(isAudited('DELETE', 204)).toBe(true);
    expect(isAudited('GET', 404)).toBe(true);
    expect(isAudited('GET', 200)).toBe(false);
  });
});

describe('audit: the query string', () => {
  it('reads filters, normalising times', () => {
    expect(
      parseAuditQuery({
        action: 'task.cancel',
        subject: 'alice',
        result: '403',
        since: '2026-01-01T01:00:00+01:00',
        limit: '10',
        cursor: '42',
      }),
    ).toEqual({
      action: 'task.cancel',
      subject: 'alice',
      result: 403,
      since: '2026-01-01T00:00:00.000Z',
      limit: 10,
      cursor: '42',
    });
    expect(parseAuditQuery({ result: 'refused' })).toEqual({ limit: 50, result: 'refused' });
  });

  it.each([
    { limit: '0' },
    { limit: '501' },
    { limit: '1.5' },
    { result: '2000' },
    { since: 'last tuesday' },
    { until: '' },
    { subject: '' },
    { cursor: '../x' },
  ])('refuses %j with a 400 naming the field', (q) => {
    const field = Object.keys(q)[0] as string;
    expect(() => parseAuditQuery(q)).toThrow(ValidationError);
    expect(() => parseAuditQuery(q)).toThrow(new RegExp(field));
  });
});
