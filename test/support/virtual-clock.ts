/**
 * Simulated time for an in-process simulation: replaces `setTimeout`, `clearTimeout` and
 * `Date.now` so that timers fire in order of their virtual due time as soon as the process has
 * nothing else to do (no pending promise callbacks). Hours of waits run in moments.
 */
export class VirtualClock {
  private now: number;
  private seq = 0;
  /** Live timers by id; the heap may still hold cleared ones (skipped when popped). */
  private readonly timers = new Map<number, { at: number; seq: number; fn: () => void }>();
  private readonly heap: { at: number; seq: number }[] = [];
  private readonly real = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    dateNow: Date.now,
    setImmediate: globalThis.setImmediate,
  };

  constructor(start: number) {
    this.now = start;
  }

  install(): void {
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = (fn: (...args: unknown[]) => void, ms = 0, ...args: unknown[]) => {
      const id = ++this.seq;
      const at = this.now + Math.max(0, Number(ms) || 0);
      this.timers.set(id, { at, seq: id, fn: () => fn(...args) });
      this.push({ at, seq: id });
      // a handle that looks like Node's (unref/ref/hasRef) and compares as its id
      return {
        id,
        unref: () => undefined,
        ref: () => undefined,
        hasRef: () => true,
        [Symbol.toPrimitive]: () => id,
      };
    };
    g.clearTimeout = (handle: unknown) => {
      const id =
        typeof handle === 'object' && handle !== null ? (handle as { id: number }).id : Number(handle);
      this.timers.delete(id);
    };
    Date.now = () => this.now;
  }

  uninstall(): void {
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = this.real.setTimeout;
    g.clearTimeout = this.real.clearTimeout;
    Date.now = this.real.dateNow;
  }

  time(): number {
    return this.now;
  }

  /** Lets every pending promise callback run (a turn of the real event loop). */
  settle(): Promise<void> {
    return new Promise((resolve) => this.real.setImmediate(resolve));
  }

  /**
   * Runs until `done()` holds: settles, then moves time to the next due timers and fires them.
   * Returns false when nothing is left to fire before `done()` holds (a deadlock).
   */
  async run(done: () => boolean): Promise<boolean> {
    for (;;) {
      await this.settle();
      await this.settle();
      if (done()) return true;
      while (this.heap[0] && !this.timers.has(this.heap[0].seq)) this.pop();
      const next = this.heap[0];
      if (!next) return false;
      const at = next.at;
      this.now = Math.max(this.now, at);
      while (this.heap[0] && this.heap[0].at <= at) {
        const top = this.pop();
        const t = top && this.timers.get(top.seq);
        if (!top || !t) continue;
        this.timers.delete(top.seq);
        t.fn();
      }
    }
  }

  private less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: { at: number; seq: number }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i] as typeof e, h[parent] as typeof e)) break;
      [h[i], h[parent]] = [h[parent] as typeof e, h[i] as typeof e];
      i = parent;
    }
  }

  private pop(): { at: number; seq: number } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as typeof last, h[m] as typeof last)) m = l;
        if (r < h.length && this.less(h[r] as typeof last, h[m] as typeof last)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as typeof last, h[i] as typeof last];
        i = m;
      }
    }
    return top;
  }
}
