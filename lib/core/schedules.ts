import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { authorize, type Principal } from './access.js';
import { NotFoundError, ValidationError } from './errors.js';
import { checkRepo, type RepoPolicy, STRICT_REPO_POLICY } from './repo-policy.js';
import { checkPin } from './routing.js';
import { describeIssues, TaskSubmission } from './schemas.js';

const slug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, "_" and "-"');

/** A schedule id: `s` + 20 lowercase base32 characters (safe as an EventBridge schedule name). */
export const SCHEDULE_ID_PATTERN = /^s[0-9a-z]{20}$/;

export function newScheduleId(): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let id = 's';
  for (const b of randomBytes(20)) id += alphabet[b % 32];
  return id;
}

/** A recurring task made through the API: the task body is submitted on every firing. */
export const Schedule = z.object({
  id: z.string().regex(SCHEDULE_ID_PATTERN),
  tenant: slug,
  name: slug,
  /** EventBridge Scheduler syntax: `cron(0 3 * * ? *)` or `rate(1 day)`. */
  schedule: z.string(),
  /** IANA time zone the cron expression is read in. */
  timezone: z.string(),
  /** A valid `POST /v1/tasks` body. */
  task: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  enabled: z.boolean(),
});
export type Schedule = z.infer<typeof Schedule>;

/** The body of `POST /v1/schedules`. */
export const ScheduleCreation = z
  .object({
    name: slug,
    schedule: z.string().min(1).max(256),
    timezone: z.string().min(1).max(64).default('UTC'),
    task: z.record(z.string(), z.unknown()),
    enabled: z.boolean().default(true),
  })
  .strict();

/** Where schedules live, scoped by tenant like tasks. */
export interface ScheduleStore {
  create(schedule: Schedule): Promise<void>;
  /** The schedule, or undefined when it does not exist or belongs to another tenant. */
  get(tenant: string, id: string): Promise<Schedule | undefined>;
  list(tenant: string): Promise<Schedule[]>;
  /** Removes it; nothing happens when it is not there. */
  delete(tenant: string, id: string): Promise<void>;
}

/** What fires schedules: EventBridge Scheduler on AWS, an in-process loop locally. */
export interface Scheduler {
  upsert(schedule: Schedule): Promise<void>;
  remove(schedule: Schedule): Promise<void>;
}

export interface ScheduleServiceDeps {
  store: ScheduleStore;
  scheduler: Scheduler;
  /** Which repositories a tenant may name (default: public https and ssh hosts only). */
  repoPolicy?: RepoPolicy;
  now?: () => Date;
}

/** The use cases behind `/v1/schedules`. */
export class ScheduleService {
  private readonly now: () => Date;

  constructor(private readonly deps: ScheduleServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async create(principal: Principal, body: unknown): Promise<Schedule> {
    authorize(principal, 'schedule:manage');
    const parsed = ScheduleCreation.safeParse(body);
    if (!parsed.success)
      throw new ValidationError('The schedule is not valid.', describeIssues(parsed.error));
    const input = parsed.data;
    checkExpression(input.schedule);
    checkTimezone(input.timezone);
    const task = TaskSubmission.safeParse(input.task);
    if (!task.success) {
      throw new ValidationError(
        "The schedule's task is not valid.",
        describeIssues(task.error).map((i) => ({ field: `task.${i.field}`, message: i.message })),
      );
    }
    checkRepo(task.data.repo, principal.tenant, this.deps.repoPolicy ?? STRICT_REPO_POLICY, 'task.repo');
    checkPin(task.data.provider, task.data.pin, 'task.pin');
    const schedule: Schedule = {
      id: newScheduleId(),
      tenant: principal.tenant,
      name: input.name,
      schedule: input.schedule,
      timezone: input.timezone,
      task: input.task,
      createdAt: this.now().toISOString(),
      enabled: input.enabled,
    };
    await this.deps.store.create(schedule);
    try {
      await this.deps.scheduler.upsert(schedule);
    } catch (err) {
      await this.deps.store.delete(schedule.tenant, schedule.id);
      throw err;
    }
    return schedule;
  }

  async list(principal: Principal): Promise<{ items: Schedule[] }> {
    authorize(principal, 'schedule:read');
    return { items: await this.deps.store.list(principal.tenant) };
  }

  async get(principal: Principal, id: string): Promise<Schedule> {
    authorize(principal, 'schedule:read');
    const found = SCHEDULE_ID_PATTERN.test(id) ? await this.deps.store.get(principal.tenant, id) : undefined;
    if (!found) throw new NotFoundError(`Schedule ${id.slice(0, 64)} was not found.`);
    return found;
  }

  async delete(principal: Principal, id: string): Promise<void> {
    authorize(principal, 'schedule:manage');
    const found = await this.get(principal, id);
    await this.deps.scheduler.remove(found);
    await this.deps.store.delete(found.tenant, found.id);
  }
}

// ---------------------------------------------------------------- expressions

type Field = 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week' | 'year';

export type ParsedExpression =
  | { kind: 'rate'; periodMs: number }
  | {
      kind: 'cron';
      minutes: Set<number>;
      hours: Set<number>;
      /** undefined: `?` (the other day field decides). */
      daysOfMonth?: Set<number>;
      months: Set<number>;
      /** 1 = Sunday … 7 = Saturday; undefined: `?`. */
      daysOfWeek?: Set<number>;
      years: Set<number>;
    };

const UNIT_MS: Record<string, number> = {
  minute: 60_000,
  minutes: 60_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
};
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const bad = (message: string) => new ValidationError(message, [{ field: 'schedule', message }]);

function parseField(text: string, field: Field, min: number, max: number, names?: string[]): Set<number> {
  const value = (token: string): number => {
    const upper = token.toUpperCase();
    const named = names?.indexOf(upper) ?? -1;
    if (named >= 0) return named + min;
    if (!/^\d+$/.test(token)) throw bad(`${field}: "${token}" is not a number${names ? ' or a name' : ''}.`);
    const n = Number(token);
    if (n < min || n > max) throw bad(`${field}: ${n} is outside ${min}-${max}.`);
    return n;
  };
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [range, stepText, extra] = part.split('/');
    if (range === undefined || range === '' || extra !== undefined)
      throw bad(`${field}: "${part}" is not valid.`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1)
        throw bad(`${field}: step "${stepText}" is not valid.`);
      step = Number(stepText);
    }
    let from: number;
    let to: number;
    if (range === '*') {
      from = min;
      to = max;
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (a === undefined || b === undefined || more !== undefined)
        throw bad(`${field}: "${range}" is not a range.`);
      from = value(a);
      to = value(b);
      if (from > to) throw bad(`${field}: the range "${range}" is backwards.`);
    } else {
      from = value(range);
      to = stepText === undefined ? from : max;
    }
    for (let n = from; n <= to; n += step) out.add(n);
  }
  return out;
}

/** Parses an EventBridge Scheduler expression; throws ValidationError naming `schedule`. */
export function parseExpression(expression: string): ParsedExpression {
  const rate = expression.match(/^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/);
  if (rate) {
    const n = Number(rate[1]);
    if (n < 1) throw bad('rate: the value must be 1 or more.');
    return { kind: 'rate', periodMs: n * (UNIT_MS[rate[2] as string] as number) };
  }
  if (expression.startsWith('rate(')) {
    throw bad('rate(N minute|minutes|hour|hours|day|days) expected, e.g. rate(1 day).');
  }
  const cron = expression.match(/^cron\((.*)\)$/);
  if (!cron) throw bad('cron(...) or rate(...) expected, e.g. cron(0 3 * * ? *).');
  const fields = (cron[1] as string).trim().split(/\s+/);
  if (fields.length !== 6) {
    throw bad(`cron needs 6 fields (minute hour day-of-month month day-of-week year), not ${fields.length}.`);
  }
  const [min, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  if (/[LW#]/i.test(dom) || /[L#]/i.test(dow)) {
    throw bad('cron: L, W and # are not supported.');
  }
  if ((dom === '?') === (dow === '?')) {
    throw bad('cron: exactly one of day-of-month and day-of-week must be "?".');
  }
  if (min === '?' || hour === '?' || month === '?' || year === '?') {
    throw bad('cron: "?" is only allowed in day-of-month or day-of-week.');
  }
  return {
    kind: 'cron',
    minutes: parseField(min, 'minute', 0, 59),
    hours: parseField(hour, 'hour', 0, 23),
    daysOfMonth: dom === '?' ? undefined : parseField(dom, 'day-of-month', 1, 31),
    months: parseField(month, 'month', 1, 12, MONTHS),
    daysOfWeek: dow === '?' ? undefined : parseField(dow, 'day-of-week', 1, 7, DAYS),
    years: parseField(year, 'year', 1970, 2199),
  };
}

export function checkExpression(expression: string): void {
  parseExpression(expression);
}

export function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new ValidationError(`"${timezone.slice(0, 64)}" is not an IANA time zone.`, [
      { field: 'timezone', message: 'unknown time zone' },
    ]);
  }
}

/** Minutes to add to UTC to get the wall time in `timezone` at `utcMs`. */
function offsetMinutes(timezone: string, utcMs: number): number {
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return 0;
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
  }).formatToParts(new Date(utcMs));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'));
  return Math.round((wall - Math.floor(utcMs / 60_000) * 60_000) / 60_000);
}

function wallToUtc(timezone: string, wallMs: number): number {
  const guess = wallMs - offsetMinutes(timezone, wallMs) * 60_000;
  return wallMs - offsetMinutes(timezone, guess) * 60_000;
}

/**
 * The first firing strictly after `after`. A rate fires at `anchor + k × period` (EventBridge
 * starts a rate when the schedule is made); a cron is read in `timezone`. Undefined when the
 * expression never fires again (a past year).
 */
export function nextFireTime(
  expression: string,
  timezone: string,
  after: Date,
  anchor: Date = new Date(0),
): Date | undefined {
  const parsed = parseExpression(expression);
  if (parsed.kind === 'rate') {
    const elapsed = after.getTime() - anchor.getTime();
    const k = elapsed < 0 ? 0 : Math.floor(elapsed / parsed.periodMs) + 1;
    return new Date(anchor.getTime() + k * parsed.periodMs);
  }
  const afterMs = after.getTime();
  // search in wall-clock time (a Date whose UTC fields are the wall time), a minute after `after`
  let t = Math.floor((afterMs + offsetMinutes(timezone, afterMs) * 60_000) / 60_000) * 60_000 + 60_000;
  for (let guard = 0; guard < 200_000; guard++) {
    const d = new Date(t);
    const year = d.getUTCFullYear();
    if (year > 2199) return undefined;
    if (!parsed.years.has(year)) {
      t = Date.UTC(year + 1, 0, 1);
      continue;
    }
    if (!parsed.months.has(d.getUTCMonth() + 1)) {
      t = Date.UTC(year, d.getUTCMonth() + 1, 1);
      continue;
    }
    const dayOk = parsed.daysOfMonth
      ? parsed.daysOfMonth.has(d.getUTCDate())
      : (parsed.daysOfWeek as Set<number>).has(d.getUTCDay() + 1);
    if (!dayOk) {
      t = Date.UTC(year, d.getUTCMonth(), d.getUTCDate() + 1);
      continue;
    }
    if (!parsed.hours.has(d.getUTCHours())) {
      t = Date.UTC(year, d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
      continue;
    }
    if (!parsed.minutes.has(d.getUTCMinutes())) {
      t += 60_000;
      continue;
    }
    const utc = wallToUtc(timezone, t);
    if (utc > afterMs) return new Date(utc);
    t += 60_000;
  }
  return undefined;
}
