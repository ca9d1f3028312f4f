import type { SqliteTaskStore, SweepResult } from './sqlite-store.js';
import type { SqliteDeliveryLog } from './webhook-deliveries.js';

export interface RetentionSweepOptions {
  store: SqliteTaskStore;
  deliveries: SqliteDeliveryLog;
  /** How long finished tasks are kept, in ms. */
  keepMs: number;
  /** How often the sweep runs, in ms. */
  everyMs: number;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  now?: () => number;
}

/**
 * The local platform's retention: on a timer, deletes tasks that finished more than `keepMs` ago
 * with their logs and idempotency keys, and webhook delivery ids as old. A task not finished is
 * never touched (the store's query only takes finished ones).
 */
export class RetentionSweep {
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly opts: RetentionSweepOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.runOnce();
    this.timer = setInterval(() => this.runOnce(), this.opts.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One sweep; a failure is logged and the next one tries again. */
  runOnce(): (SweepResult & { deliveries: number }) | undefined {
    try {
      const cutoff = this.now() - this.opts.keepMs;
      const result = {
        ...this.opts.store.sweepFinishedBefore(new Date(cutoff).toISOString()),
        deliveries: this.opts.deliveries.pruneBefore(cutoff),
      };
      if (result.tasks > 0 || result.deliveries > 0) this.opts.log('retention sweep', { ...result });
      return result;
    } catch (err) {
      this.opts.log('the retention sweep failed', { err: String(err) });
      return undefined;
    }
  }
}
