import { describe, expect, it } from '@jest/globals';
import type { Principal } from '../../../lib/core/access.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../../lib/core/errors.js';
import {
  nextFireTime,
  parseExpression,
  type Schedule,
  type Scheduler,
  ScheduleService,
  type ScheduleStore,
} from '../../../lib/core/schedules.js';

class MemoryScheduleStore implements ScheduleStore {
  readonly items = new Map<string, Schedule>();
  async create(s: Schedule) {
    this.items.set(s.id, s);
  }
  async get(tenant: string, id: string) {
    const s = this.items.get(id);
    return s?.tenant === tenant ? s : undefined;
  }
  async list(tenant: string) {
    return [...this.items.values()].filter((s) => s.tenant === tenant);
  }
  async delete(tenant: string, id: string) {
    if (this.items.get(id)?.tenant === tenant) this.items.delete(id);
  }
}

class RecordingScheduler implements Scheduler {
  readonly calls: string[] = [];
  fail = false;
  async upsert(s: Schedule) {
    if (this.fail) throw new Error('scheduler down');
    this.calls.push(`upsert ${s.id}`);
  }
  async remove(s: Schedule) {
    this.calls.push(`remove ${s.id}`);
  }
}

const operator: Principal = { tenant: 'acme', role: 'operator', subject: 'op' };
const body = {
  name: 'nightly-deps',
  schedule: 'cron(0 3 * * ? *)',
  task: { repo: 'https://example.com/acme/app.git', prompt: 'Update the dependencies.' },
};

function setup() {
  const store = new MemoryScheduleStore();
  const scheduler = new RecordingScheduler();
  const service = new ScheduleService({
    store,
    scheduler,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  return { store, scheduler, service };
}

async function fieldsOf(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  return ((err as ValidationError).details as { field: string }[]).map((d) => d.field);
}

describe('ScheduleService', () => {
  it('creates a schedule for the caller tenant and hands it to the scheduler', async () => {
    // Arrange
    const { store, scheduler, service } = setup();
    // Act
    const s = await service.create(operator, body);
    // Assert
    expect(s).toMatchObject({
      tenant: 'acme',
      name: 'nightly-deps',
      timezone: 'UTC',
      enabled: true,
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    expect(s.id).toMatch(/^s[0-9a-z]{20}$/);
    expect(store.items.get(s.id)).toEqual(s);
    expect(scheduler.calls).toEqual([`upsert ${s.id}`]);
  });

  it.each([
    [{ ...body, schedule: 'cron(0 3 * * *)' }, 'schedule'],
    [{ ...body, schedule: 'every day' }, 'schedule'],
    [{ ...body, timezone: 'Mars/Olympus' }, 'timezone'],
    [{ ...body, name: 'Bad Name' }, 'name'],
    [{ ...body, task: { repo: 'https://example.com/a.git' } }, 'task.prompt'],
    [{ ...body, task: { ...body.task, repo: '/tmp/local' } }, 'task.repo'],
    [{ ...body, task: { ...body.task, provider: 'auto', pin: true } }, 'task.pin'],
    [{ ...body, extra: 1 }, '(body)'],
  ])('rejects %j naming the field', async (bad, field) => {
    const { service, store } = setup();
    expect(await fieldsOf(service.create(operator, bad))).toContain(field);
    expect(store.items.size).toBe(0);
  });

  it('forgets the schedule when the scheduler refuses it', async () => {
    const { service, store, scheduler } = setup();
    scheduler.fail = true;
    await expect(service.create(operator, body)).rejects.toThrow('scheduler down');
    expect(store.items.size).toBe(0);
  });

  it('lets submitters read but not manage schedules', async () => {
    const { service } = setup();
    const submitter: Principal = { ...operator, role: 'submitter' };
    await expect(service.create(submitter, body)).rejects.toBeInstanceOf(ForbiddenError);
    expect(await service.list(submitter)).toEqual({ items: [] });
  });

  it('answers 404 for another tenant schedule, and deletes its own', async () => {
    const { service, scheduler } = setup();
    const s = await service.create(operator, body);
    const other: Principal = { ...operator, tenant: 'globex' };
    await expect(service.get(other, s.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(service.delete(other, s.id)).rejects.toBeInstanceOf(NotFoundError);
    await service.delete(operator, s.id);
    expect(scheduler.calls).toEqual([`upsert ${s.id}`, `remove ${s.id}`]);
    await expect(service.get(operator, s.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('nextFireTime', () => {
  const at = (iso: string) => new Date(iso);
  const next = (expr: string, after: string, tz = 'UTC') => nextFireTime(expr, tz, at(after))?.toISOString();

  it.each([
    ['cron(0 3 * * ? *)', '2026-01-01T02:59:00Z', '2026-01-01T03:00:00.000Z'],
    ['cron(0 3 * * ? *)', '2026-01-01T03:00:00Z', '2026-01-02T03:00:00.000Z'],
    ['cron(* * * * ? *)', '2026-01-01T03:00:30Z', '2026-01-01T03:01:00.000Z'],
    ['cron(*/15 * * * ? *)', '2026-01-01T03:16:00Z', '2026-01-01T03:30:00.000Z'],
    ['cron(5/20 9-17 * * ? *)', '2026-01-01T17:46:00Z', '2026-01-02T09:05:00.000Z'],
    ['cron(0 8 ? * MON-FRI *)', '2026-01-02T09:00:00Z', '2026-01-05T08:00:00.000Z'], // Fri → Mon
    ['cron(0 8 ? * 1,7 *)', '2026-01-01T00:00:00Z', '2026-01-03T08:00:00.000Z'], // Sat
    ['cron(0 0 31 * ? *)', '2026-02-01T00:00:00Z', '2026-03-31T00:00:00.000Z'],
    ['cron(0 12 1 JAN,JUL ? 2027)', '2026-03-01T00:00:00Z', '2027-01-01T12:00:00.000Z'],
    ['cron(0 0 29 2 ? *)', '2026-01-01T00:00:00Z', '2028-02-29T00:00:00.000Z'],
  ])('%s after %s is %s', (expr, after, expected) => {
    expect(next(expr, after)).toBe(expected);
  });

  it('reads cron in the time zone', () => {
    // 03:00 at UTC+5 is 22:00 UTC the day before
    expect(next('cron(0 3 * * ? *)', '2026-01-01T00:00:00Z', 'Etc/GMT-5')).toBe('2026-01-01T22:00:00.000Z');
    // New York is UTC-5 in January, UTC-4 in July
    expect(next('cron(0 9 * * ? *)', '2026-01-10T00:00:00Z', 'America/New_York')).toBe(
      '2026-01-10T14:00:00.000Z',
    );
    expect(next('cron(0 9 * * ? *)', '2026-07-10T00:00:00Z', 'America/New_York')).toBe(
      '2026-07-10T13:00:00.000Z',
    );
  });

  it('never fires again after the last year', () => {
    expect(next('cron(0 0 1 1 ? 2025)', '2026-01-01T00:00:00Z')).toBeUndefined();
  });

  it('steps a rate from its anchor', () => {
    const anchor = at('2026-01-01T00:00:10Z');
    expect(nextFireTime('rate(5 minutes)', 'UTC', at('2026-01-01T00:07:00Z'), anchor)?.toISOString()).toBe(
      '2026-01-01T00:10:10.000Z',
    );
    expect(nextFireTime('rate(1 day)', 'UTC', at('2025-12-01T00:00:00Z'), anchor)?.toISOString()).toBe(
      '2026-01-01T00:00:10.000Z',
    );
    expect(nextFireTime('rate(2 hours)', 'UTC', anchor, anchor)?.toISOString()).toBe(
      '2026-01-01T02:00:10.000Z',
    );
  });

  it.each([
    'cron(0 3 * * * *)',
    'cron(0 3 ? * ? *)',
    'cron(60 3 * * ? *)',
    'cron(0 3 L * ? *)',
    'cron(0 3 ? * 2#1 *)',
    'cron(0 5-3 * * ? *)',
    'cron(0 3 * FOO ? *)',
    'rate(0 minutes)',
    'rate(1 week)',
    'at(2026-01-01T00:00:00)',
  ])('rejects %s', (expr) => {
    expect(() => parseExpression(expr)).toThrow(ValidationError);
  });
});
