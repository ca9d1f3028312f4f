import { z } from 'zod';
import type { Principal } from '../core/access.js';
import { ConfigError } from '../core/errors.js';
import { checkRepo, STRICT_REPO_POLICY } from '../core/repo-policy.js';
import { SCHEDULE_ID_PATTERN, type ScheduleStore } from '../core/schedules.js';
import { describeIssues, TaskSubmission } from '../core/schemas.js';
import type { TaskService } from '../core/tasks.js';

const slug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, "_" and "-"');

/** A task submitted on a schedule (EventBridge Scheduler), e.g. a nightly dependency update. */
export const RecurringTask = z
  .object({
    name: slug,
    /** An EventBridge Scheduler expression: `cron(0 3 * * ? *)` or `rate(1 day)`. */
    schedule: z.string().regex(/^(cron|rate)\(.+\)$/, 'cron(...) or rate(...)'),
    /** IANA time zone for cron expressions. @default UTC */
    timezone: z.string().optional(),
    tenant: slug,
    /** The body of `POST /v1/tasks`. */
    task: z.record(z.string(), z.unknown()),
  })
  .strict();
export type RecurringTask = z.infer<typeof RecurringTask>;

/** Reads and checks a list of recurring tasks (`-c recurring=<file>`): fails synth on any problem. */
export function parseRecurringTasks(value: unknown, source = 'recurring tasks'): RecurringTask[] {
  const list = z.array(RecurringTask).safeParse(value);
  if (!list.success) {
    throw new ConfigError(
      `${source}: ${describeIssues(list.error)
        .map((i) => `${i.field}: ${i.message}`)
        .join('; ')}`,
    );
  }
  const seen = new Set<string>();
  for (const r of list.data) {
    if (seen.has(r.name)) throw new ConfigError(`${source}: the name "${r.name}" is used twice.`);
    seen.add(r.name);
    const body = TaskSubmission.safeParse(r.task);
    if (!body.success) {
      throw new ConfigError(
        `${source}: ${r.name}: ${describeIssues(body.error)
          .map((i) => `${i.field}: ${i.message}`)
          .join('; ')}`,
      );
    }
    try {
      checkRepo(body.data.repo, r.tenant, STRICT_REPO_POLICY);
    } catch (err) {
      throw new ConfigError(`${source}: ${r.name}: ${(err as Error).message}`);
    }
  }
  return list.data;
}

/**
 * What the schedule passes to the submitter on each firing: a deploy-time recurring task, or a
 * schedule made through the API (`scheduleId`, see eventbridge-scheduler.ts).
 */
export const RecurringFiring = z.object({
  scheduleId: z.string().regex(SCHEDULE_ID_PATTERN).optional(),
  name: slug,
  tenant: slug,
  task: z.record(z.string(), z.unknown()),
  /** `<aws.scheduler.scheduled-time>`: the same for every retry of one firing. */
  scheduledTime: z.string().min(1),
});

/**
 * Submits one firing of a recurring task. A deploy-time one is submitted as an operator of its
 * tenant, keyed by the schedule's name and scheduled time; an API-made one as a submitter, keyed by
 * its id and scheduled time, and only while it still exists (undefined once deleted). Either way a
 * retried invocation submits the task once.
 */
export async function submitRecurring(service: TaskService, raw: unknown, schedules?: ScheduleStore) {
  const firing = RecurringFiring.parse(raw);
  if (firing.scheduleId) {
    const schedule = await schedules?.get(firing.tenant, firing.scheduleId);
    if (schedules && !schedule?.enabled) return undefined;
    const principal: Principal = {
      tenant: firing.tenant,
      role: 'submitter',
      subject: `schedule:${firing.name}`,
    };
    return service.submit(
      principal,
      schedule?.task ?? firing.task,
      `schedule:${firing.scheduleId}:${firing.scheduledTime}`,
    );
  }
  const principal: Principal = {
    tenant: firing.tenant,
    role: 'operator',
    subject: `schedule:${firing.name}`,
  };
  return service.submit(principal, firing.task, `schedule:${firing.name}:${firing.scheduledTime}`);
}
