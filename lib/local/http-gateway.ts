import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { Context } from 'aws-lambda';
import { type ApiEvent, type ApiResult, MAX_BODY_BYTES } from '../api/handler.js';
import { authorize } from '../core/access.js';
import { PayloadTooLargeError, toHttpError } from '../core/errors.js';
import type { Authenticator } from '../core/ports.js';
import { isTerminal, type TaskStatus } from '../core/schemas.js';
import { SpanKind, withSpan } from '../telemetry/tracing.js';
import { streamLogEvents, wantsEventStream } from './log-events.js';
import type { WebAssets } from './web-assets.js';

type Handler = (event: ApiEvent, context: Context) => Promise<ApiResult>;

export interface GatewayOptions {
  handler: Handler;
  authenticator: Authenticator;
  metrics: () => Promise<{ contentType: string; body: string }>;
  followPollMs?: number;
  /** The dashboard's files, served at `/` without a token. */
  assets?: WebAssets;
  /** Time and connection limits of the HTTP server (defaults: DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>;
}

/**
 * Routes the local HTTP server answers itself, beside the API handler's (API_ROUTES): what a Lambda
 * cannot do; /openapi.json describes them too. `GET /v1/tasks/{id}/logs?follow=1` is the handler's
 * route, streamed.
 */
export const GATEWAY_ROUTES = [{ method: 'GET', path: '/metrics' }] as const;

/** What one client may hold of the server: the time to send its request, and connections. */
export interface HttpLimits {
  /** The whole request (headers and body) must arrive within this; 408 and closed otherwise. */
  requestTimeoutMs: number;
  /** The headers must arrive within this (a client that never finishes them is cut off). */
  headersTimeoutMs: number;
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Connections at once; more are closed as they come. */
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 512,
};

const lambdaContext = (requestId: string): Context =>
  ({
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'autodev-api-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:autodev-api-local',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      reject(new PayloadTooLargeError(`The request body is larger than ${MAX_BODY_BYTES} bytes.`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new PayloadTooLargeError(`The request body is larger than ${MAX_BODY_BYTES} bytes.`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A body that is not UTF-8 travels base64-encoded, as API Gateway sends it: its bytes stay as they were. */
function eventBody(body: Buffer): { body?: string; isBase64Encoded: boolean } {
  if (body.length === 0) return { isBase64Encoded: false };
  try {
    return { body: new TextDecoder('utf-8', { fatal: true }).decode(body), isBase64Encoded: false };
  } catch {
    return { body: body.toString('base64'), isBase64Encoded: true };
  }
}

/** Turns a Node request into the API Gateway HTTP API (payload v2) event the Lambda handler takes. */
export function toApiEvent(req: IncomingMessage, body: Buffer, url: URL): ApiEvent {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const now = Date.now();
  const requestId = randomUUID();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    ...eventBody(body),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
    },
  };
}

function send(res: ServerResponse, result: ApiResult) {
  const body = result.body ?? '';
  res.writeHead(result.statusCode ?? 200, {
    ...(result.headers as Record<string, string>),
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** What the HTTP parser refused, as the API's other errors: status, code and message. */
function clientErrorAnswer(err: Error & { code?: string }): [number, string, string] {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return [431, 'headers_too_large', 'The request line and headers are larger than this server accepts.'];
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return [408, 'request_timeout', 'The request was not sent in time.'];
  }
  return [400, 'bad_request', 'The request is not valid HTTP.'];
}

/**
 * Answers what Node's HTTP parser refuses before any handler sees it (a request line or headers too
 * large, malformed HTTP, a request not sent in time) with the API's JSON error, then closes.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  // a response already under way on this socket (Node's own check), or a peer gone: just close
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || socket.writableEnded || pending?.headersSent || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, code, message] = clientErrorAnswer(err);
  const body = JSON.stringify({ error: { code, message } });
  // the answer to a HEAD has no body (the request's first bytes say which it was)
  const raw = (err as { rawPacket?: Buffer }).rawPacket;
  const head = Buffer.isBuffer(raw) && raw.toString('latin1', 0, 5) === 'HEAD ';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${head ? '' : body}`,
  );
}

/** A route as a span names it: ids in the path become `{id}` (`POST /v1/tasks`, `GET /v1/tasks/{id}`). */
export function routeOf(path: string): string {
  return path.replace(/^\/v1\/(tasks|schedules|tenants)\/[^/]+/, '/v1/$1/{id}');
}

/** Serves one request in an HTTP server span (continuing the caller's `traceparent`, if it sent one). */
function withServerSpan(req: IncomingMessage, res: ServerResponse, url: URL, fn: () => Promise<void>) {
  const method = req.method ?? 'GET';
  const route = routeOf(url.pathname);
  return withSpan(
    `${method} ${route}`,
    async (span) => {
      await fn();
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
    },
    {
      kind: SpanKind.SERVER,
      parent: propagation.extract(ROOT_CONTEXT, req.headers),
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_HTTP_ROUTE]: route,
        [ATTR_URL_PATH]: url.pathname,
      },
    },
  );
}

/**
 * The local platform's HTTP server: it only turns requests into Lambda events for the shared API
 * handler. It adds what a Lambda cannot do: `GET /metrics` and following logs as a stream.
 */
export function createGateway(opts: GatewayOptions): Server {
  const pollMs = opts.followPollMs ?? 250;

  async function follow(req: IncomingMessage, res: ServerResponse, url: URL) {
    let after = Number(url.searchParams.get('after') ?? 0) || 0;
    let started = false;
    let closed = false;
    req.on('close', () => {
      closed = true;
    });
    while (!closed) {
      url.searchParams.set('after', String(after));
      url.searchParams.delete('follow');
      const result = await opts.handler(toApiEvent(req, Buffer.alloc(0), url), lambdaContext(randomUUID()));
      if (!started) {
        if (result.statusCode !== 200) return send(res, result);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
        // sent now: a client following a task that has no line yet learns at once that it may
        res.flushHeaders();
        started = true;
      } else if (result.statusCode !== 200) {
        // each poll is authorized anew: a token that expired (or a task no longer readable) ends the
        // stream; the client asks again and is told why
        break;
      }
      const headers = result.headers as Record<string, string>;
      if (result.body) res.write(result.body);
      after = Number(headers['x-autodev-last-seq'] ?? after);
      if (!result.body && isTerminal(headers['x-autodev-task-status'] as TaskStatus)) break;
      if (!result.body) await new Promise((r) => setTimeout(r, pollMs));
    }
    res.end();
  }

  /** The logs as Server-Sent Events, from `Last-Event-ID` or `?after=`: each read goes through the handler. */
  function events(req: IncomingMessage, res: ServerResponse, url: URL) {
    const resume = Number(req.headers['last-event-id'] ?? url.searchParams.get('after') ?? 0);
    return streamLogEvents(req, res, Number.isInteger(resume) && resume > 0 ? resume : 0, {
      pollMs,
      read: (after) => {
        const page = new URL(url);
        page.searchParams.set('after', String(after));
        const event = toApiEvent(req, Buffer.alloc(0), page);
        event.headers = { ...event.headers, accept: 'application/json' };
        delete event.headers['if-none-match'];
        return opts.handler(event, lambdaContext(event.requestContext.requestId));
      },
    });
  }

  const limits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // how often the two time-outs above are checked (Node's default, 30 s, would let them slip)
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs / 2)),
    },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      void withServerSpan(req, res, url, async () => {
        try {
          if (GATEWAY_ROUTES.some((r) => r.path === url.pathname && r.method === req.method)) {
            const principal = await opts.authenticator.authenticate({
              authorization: req.headers.authorization,
            });
            authorize(principal, 'metrics:read');
            const m = await opts.metrics();
            res.writeHead(200, { 'content-type': m.contentType });
            res.end(m.body);
            return;
          }
          if ((req.method === 'GET' || req.method === 'HEAD') && opts.assets?.has(url.pathname)) {
            opts.assets.serve(req, res, url.pathname);
            return;
          }
          if (req.method === 'GET' && /\/logs$/.test(url.pathname) && wantsEventStream(req)) {
            await events(req, res, url);
            return;
          }
          if (
            req.method === 'GET' &&
            /\/logs$/.test(url.pathname) &&
            ['1', 'true'].includes(url.searchParams.get('follow') ?? '')
          ) {
            await follow(req, res, url);
            return;
          }
          const body = await readBody(req);
          const event = toApiEvent(req, body, url);
          send(res, await opts.handler(event, lambdaContext(event.requestContext.requestId)));
        } catch (err) {
          const { status, body } = toHttpError(err);
          if (!res.headersSent)
            send(res, {
              statusCode: status,
              headers: { 'content-type': 'application/json', connection: 'close' },
              body: JSON.stringify(body),
            });
          else res.end();
        }
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', answerClientError);
  return server;
}
