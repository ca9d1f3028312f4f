import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiResult } from '../api/handler.js';
import type { LogLine } from '../core/ports.js';
import { isTerminal, type TaskStatus } from '../core/schemas.js';

/** Whether a request for a task's logs asks for Server-Sent Events. */
export const wantsEventStream = (req: IncomingMessage): boolean =>
  /\btext\/event-stream\b/.test(req.headers.accept ?? '');

interface LogPage {
  status: TaskStatus;
  lastSeq: number;
  lines: LogLine[];
}

export interface LogEventsOptions {
  /** Reads the logs after `after` as JSON through the API handler (authorized anew on every call). */
  read(after: number): Promise<ApiResult>;
  pollMs: number;
  /** A comment line this often keeps proxies from closing a quiet stream. */
  heartbeatMs?: number;
}

const event = (name: string, data: unknown, id?: number) =>
  `${id === undefined ? '' : `id: ${id}\n`}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * A task's log as Server-Sent Events: `log` (id = the line's seq, so `Last-Event-ID` resumes),
 * `status` when the task moves, and `end` once it has ended and every line was sent. The first read
 * decides the answer: an error (401, 404) is answered as JSON, as any other call. A later failure
 * (the token expired meanwhile) is sent as an `error` event and ends the stream.
 */
export async function streamLogEvents(
  req: IncomingMessage,
  res: ServerResponse,
  after: number,
  opts: LogEventsOptions,
): Promise<void> {
  let closed = false;
  req.on('close', () => {
    closed = true;
  });
  let started = false;
  let status: TaskStatus | undefined;
  let lastWrite = Date.now();
  /** Reads in a row that found the task ended and no new line: the last lines may land just after the status. */
  let quietEnded = 0;
  while (!closed) {
    const result = await opts.read(after);
    if (result.statusCode !== 200) {
      if (!started) {
        res.writeHead(result.statusCode ?? 500, result.headers as Record<string, string>);
        res.end(result.body);
        return;
      }
      res.write(event('error', JSON.parse(result.body ?? '{}')));
      break;
    }
    const page = JSON.parse(result.body as string) as LogPage;
    if (!started) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
      started = true;
    }
    let out = '';
    if (page.status !== status) out += event('status', { status: page.status });
    status = page.status;
    for (const line of page.lines) out += event('log', line, line.seq);
    after = page.lastSeq;
    if (out) {
      res.write(out);
      lastWrite = Date.now();
    } else if (Date.now() - lastWrite >= (opts.heartbeatMs ?? 15_000)) {
      res.write(': ping\n\n');
      lastWrite = Date.now();
    }
    quietEnded = page.lines.length === 0 && isTerminal(page.status) ? quietEnded + 1 : 0;
    if (quietEnded >= 2) {
      res.write(event('end', { status: page.status }));
      break;
    }
    if (page.lines.length === 0) await new Promise((r) => setTimeout(r, opts.pollMs));
  }
  res.end();
}
