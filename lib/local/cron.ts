import type { Principal } from '../core/access.js';
import { nextFireTime, type Schedule, type Scheduler } from '../core/schedules.js';
import type { TaskService } from '../core/tasks.js';

/** How often due schedules are looked for. @default 10 s */
export const DEFAULT_TICK_MS = 10_000;

export interface LocalCronDeps {
  /** Every tenant's schedules, read once on start. */
  schedules: { listAll(): Promise<Schedule[]> };
  tasks: Pick<TaskService, 'submit'>;
  tickMs?: number;
  now?: () => Date;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

/**
 * The local platform's scheduler: a timer that submits the task of each due schedule. Firings
 * missed while the server was down are skipped (the next one counts from start), and each firing
 * is submitted with the idempotency key `schedule:<id>:<fire time>`, so a restart, or a second
 * server on the same database, never submits one firing twice.
 */
export class LocalCron implements Scheduler {
  private readonly due = new Map<string, { schedule: Schedule; at: Date }>();
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: LocalCronDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async start(): Promise<void> {
    for (const s of await this.deps.schedules.listAll()) await this.upsert(s);
    this.timer = setInterval(() => {
      this.running ??= this.tick()
        .then(() => undefined)
        .finally(() => {
          this.running = undefined;
        });
    }, this.deps.tickMs ?? DEFAULT_TICK_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async upsert(schedule: Schedule): Promise<void> {
    this.due.delete(schedule.id);
    if (!schedule.enabled) return;
    const at = this.nextAfter(schedule, this.now());
    if (at) this.due.set(schedule.id, { schedule, at });
  }

  async remove(schedule: Schedule): Promise<void> {
    this.due.delete(schedule.id);
  }

  /** When each schedule fires next (for tests and diagnostics). */
  nextFirings(): Record<string, string> {
    return Object.fromEntries([...this.due].map(([id, d]) => [id, d.at.toISOString()]));
  }

  /** Submits every firing that is due now; returns the ids of the tasks made. */
  async tick(): Promise<string[]> {
    const now = this.now();
    const made: string[] = [];
    for (const [id, entry] of [...this.due]) {
      if (entry.at.getTime() > now.getTime()) continue;
      const { schedule, at } = entry;
      const principal: Principal = {
        tenant: schedule.tenant,
        role: 'submitter',
        subject: `schedule:${schedule.name}`,
      };
      try {
        const { task, created } = await this.deps.tasks.submit(
          principal,
          schedule.task,
          `schedule:${schedule.id}:${at.toISOString()}`,
        );
        made.push(task.id);
        this.deps.log?.('scheduled task submitted', { scheduleId: id, taskId: task.id, created });
      } catch (err) {
        this.deps.log?.('a scheduled task was not submitted', { scheduleId: id, err: String(err) });
      }
      // removed meanwhile: stays removed
      if (this.due.get(id) !== entry) continue;
      const next = this.nextAfter(schedule, now.getTime() > at.getTime() ? now : at);
      if (next) this.due.set(id, { schedule, at: next });
      else this.due.delete(id);
    }
    return made;
  }

  private nextAfter(schedule: Schedule, after: Date): Date | undefined {
    return nextFireTime(schedule.schedule, schedule.timezone, after, new Date(schedule.createdAt));
  }
}
