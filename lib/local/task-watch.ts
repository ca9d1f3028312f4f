import { isTerminal, type Task } from '../core/schemas.js';
import type { ApiClient } from './client.js';

/** Where a watch writes: the agent's log to `out`, the status line to `err`. */
export interface WatchStreams {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
  /** Whether `err` is a terminal: one status line rewritten in place; otherwise a line per change. */
  tty: boolean;
}

const CLEAR_LINE = '\r\x1b[2K';

function seconds(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** `t0123 is running (attempt 1 on claude, 12s)`: what the status line says of a task now. */
export function describeProgress(task: Task, now = Date.now()): string {
  const attempt = task.attempts.at(-1);
  const ended = isTerminal(task.status) && task.durationMs !== undefined;
  const elapsed = ended ? (task.durationMs as number) : now - Date.parse(task.createdAt);
  const parts = [
    ...(attempt ? [`attempt ${attempt.number} on ${attempt.provider}`] : []),
    seconds(Number.isFinite(elapsed) ? elapsed : 0),
  ];
  return `${task.id} is ${task.status} (${parts.join(', ')})`;
}

/**
 * The status line of a task being watched. On a terminal: one line, rewritten in place (also every
 * second, for the elapsed time), moved out of the way of each line of output. Otherwise: a plain
 * line each time the status, attempt or provider changes.
 */
export class StatusLine {
  private task?: Task;
  private shown = '';
  private lastKey = '';
  private partial = '';

  constructor(private readonly streams: WatchStreams) {}

  update(task: Task): void {
    this.task = task;
    const attempt = task.attempts.at(-1);
    const key = `${task.status}|${attempt?.number ?? ''}|${attempt?.provider ?? ''}`;
    if (this.streams.tty) this.draw();
    else if (key !== this.lastKey) this.streams.err.write(`[autodev] ${describeProgress(task)}\n`);
    this.lastKey = key;
  }

  /** Redraws the line (the elapsed time moves); nothing off a terminal. */
  tick(): void {
    if (this.streams.tty) this.draw();
  }

  /** Output of the task: whole lines are written at once, above the status line. */
  output(chunk: string): void {
    if (!this.streams.tty) {
      this.streams.out.write(chunk);
      return;
    }
    const text = this.partial + chunk;
    const cut = text.lastIndexOf('\n') + 1;
    this.partial = text.slice(cut);
    if (!cut) return;
    this.clear();
    this.streams.out.write(text.slice(0, cut));
    this.draw();
  }

  /** Leaves the last status on a line of its own. */
  end(): void {
    if (this.partial) this.output('\n');
    if (!this.streams.tty || !this.task) return;
    this.clear();
    this.streams.err.write(`[autodev] ${describeProgress(this.task)}\n`);
  }

  private clear(): void {
    if (this.shown) this.streams.err.write(CLEAR_LINE);
    this.shown = '';
  }

  private draw(): void {
    if (!this.task) return;
    this.shown = `[autodev] ${describeProgress(this.task)}`;
    this.streams.err.write(`${CLEAR_LINE}${this.shown}`);
  }
}

/**
 * Follows a task to its end: its status (polled) on the status line and its log (streamed) as it
 * comes. Answers the task as it ended; a refusal (an expired token: 401) is thrown.
 */
export async function watchTask(
  api: ApiClient,
  id: string,
  streams: WatchStreams,
  opts: { pollMs?: number; streamGraceMs?: number } = {},
): Promise<Task> {
  const line = new StatusLine(streams);
  const ticker = streams.tty ? setInterval(() => line.tick(), 1000) : undefined;
  ticker?.unref();
  // the task's status says how it ended; a stream cut short (an expired token) is told by the polls
  const stream = api.followLogs(id, (chunk) => line.output(chunk)).catch(() => undefined);
  try {
    for (;;) {
      const task = await api.get(id);
      line.update(task);
      if (isTerminal(task.status)) {
        // give the log stream a moment to print its last lines, without holding the process open
        await Promise.race([stream, new Promise((r) => setTimeout(r, opts.streamGraceMs ?? 5000).unref())]);
        line.end();
        return task;
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  } finally {
    if (ticker) clearInterval(ticker);
  }
}
