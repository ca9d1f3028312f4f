import {
  EQUAL_SHARES,
  type FairSharePolicy,
  type FairShareState,
  INITIAL_FAIR_SHARE_STATE,
  pickOrder,
  recordStart,
} from '../core/fair-share.js';
import type { ClaimableTaskStore } from '../core/ports.js';
import type { AgentRole } from '../core/roles.js';
import type { Task } from '../core/schemas.js';

/** Where an executor takes its next task from. */
export interface TaskQueue {
  /** Claims the next task to start under a lease held by `owner`; undefined when none may start. */
  claimNext(owner: string, leaseMs: number, now: Date): Promise<Task | undefined>;
}

/**
 * The local platform's admission: reads the head of each ready queue from the store, lets the
 * core's fair-share rules order them (tenants, priorities with aging, per-role limits), and claims
 * the first that is still ready. The round-robin state lives in this process.
 */
export class FairShareQueue implements TaskQueue {
  private state: FairShareState = INITIAL_FAIR_SHARE_STATE;

  constructor(
    private readonly store: ClaimableTaskStore,
    private readonly roles: () => Readonly<Record<string, AgentRole>>,
    private readonly policy: FairSharePolicy = EQUAL_SHARES,
  ) {}

  async claimNext(owner: string, leaseMs: number, now: Date): Promise<Task | undefined> {
    const roleLimits = Object.fromEntries(
      Object.values(this.roles())
        .filter((r) => r.maxConcurrent !== undefined)
        .map((r) => [r.name, r.maxConcurrent]),
    );
    // another executor may claim a head meanwhile: then the order is read again
    for (let round = 0; round < 3; round++) {
      const [ready, running] = await Promise.all([
        this.store.readyHeads(now),
        Object.keys(roleLimits).length > 0 ? this.store.listRunning() : Promise.resolve([]),
      ]);
      const order = pickOrder({
        ready,
        running,
        roleLimits,
        policy: this.policy,
        state: this.state,
        now: now.getTime(),
      });
      if (order.length === 0) return undefined;
      for (const candidate of order) {
        const claimed = await this.store.claim(candidate.id, owner, leaseMs, now);
        if (claimed) {
          this.state = recordStart(this.state, claimed.tenant, this.policy);
          return claimed;
        }
      }
    }
    return undefined;
  }
}
