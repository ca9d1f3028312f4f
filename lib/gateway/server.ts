import { randomBytes } from 'node:crypto';
import {
  type ClientRequest,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type PriceTable, priceCall, TOKEN_PRICES, tokenPriceFor } from '../core/metering.js';
import { rateLimitResetAt } from '../core/rate-limit-reset.js';
import { recordModelCallSpan } from '../telemetry/genai.js';
import { guessVendor, WIRES } from './adapters/index.js';
import type { RefusalKind, RequestInfo, UsageReader, VendorWire, WireAdapter } from './adapters/types.js';
import { GatewaySession, type SessionOptions } from './session.js';
import { SseParser } from './sse.js';

export interface GatewayOptions {
  /** Default 127.0.0.1: the gateway listens on the loopback only. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Same tool call this many times in a row ends a session. Default 8. */
  loopThreshold?: number;
  /** A rate-limit reset further off than this ends the session. Default 60 s. */
  farResetMs?: number;
  /** Per-model prices (USD per million tokens); default TOKEN_PRICES. */
  prices?: PriceTable;
  /** Largest request body accepted. Default 32 MiB. */
  maxRequestBytes?: number;
  /** An upstream silent this long (no headers, no bytes) is given up. Default 10 minutes. */
  upstreamIdleMs?: number;
  now?: () => number;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'accept-encoding',
  'authorization',
  'x-api-key',
  'x-goog-api-key',
]);
const RATE_LIMIT_STATUSES = new Set([429, 503, 529]);
/** JSON answers are read for usage up to this size; bigger ones pass through unread. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

class RequestTooLarge extends Error {}

/**
 * The model gateway: one loopback HTTP server per executor, one session per attempt. A session's
 * credential is the only key its agent sees; the gateway swaps it for the real key, forwards the
 * call to the vendor (streams pass through as they arrive), meters the answer into the session's
 * ledger, and refuses calls over budget, in a loop, or after the session ended.
 */
export class ModelGateway {
  private readonly sessions = new Map<string, GatewaySession>();
  private readonly loopThreshold: number;
  private readonly farResetMs: number;
  private readonly prices: PriceTable;
  private readonly maxRequestBytes: number;
  private readonly upstreamIdleMs: number;
  private readonly now: () => number;

  private constructor(
    private readonly server: Server,
    readonly origin: string,
    options: GatewayOptions,
  ) {
    this.loopThreshold = options.loopThreshold ?? 8;
    this.farResetMs = options.farResetMs ?? 60_000;
    this.prices = options.prices ?? TOKEN_PRICES;
    this.maxRequestBytes = options.maxRequestBytes ?? 32 * 1024 * 1024;
    this.upstreamIdleMs = options.upstreamIdleMs ?? 600_000;
    this.now = options.now ?? Date.now;
  }

  static async start(options: GatewayOptions = {}): Promise<ModelGateway> {
    const server = createServer();
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    const { address, port } = server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    const gateway = new ModelGateway(server, `http://${host}:${port}`, options);
    server.on('request', (req, res) => {
      gateway.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end();
      });
    });
    return gateway;
  }

  /** Opens a session for one attempt: its base URL (for the CLI) and its credential (the CLI's key). */
  openSession(options: SessionOptions): GatewaySession {
    const credential = `autodev-${randomBytes(32).toString('base64url')}`;
    const baseUrl = `${this.origin}${WIRES[options.provider].basePath}`;
    const session = new GatewaySession(
      options,
      credential,
      baseUrl,
      options.loopThreshold ?? this.loopThreshold,
      options.farResetMs ?? this.farResetMs,
      (s) => this.sessions.delete(s.credential),
    );
    this.sessions.set(credential, session);
    return session;
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    for (const s of [...this.sessions.values()]) s.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const method = req.method ?? 'GET';
    const session = this.sessionOf(req.headers, url);
    const wire = WIRES[session?.provider ?? guessVendor(url.pathname, req.headers)];
    if (!session)
      return reply(
        res,
        wire,
        'unauthorized',
        'Invalid API key: this credential is not (or no longer) valid.',
      );
    if (req.headers.upgrade)
      return reply(res, wire, 'not_found', 'WebSocket transport is not offered; use HTTPS.');
    if (!url.pathname.startsWith(`${wire.basePath}/`))
      return reply(res, wire, 'not_found', `No route for ${method} ${url.pathname}.`);
    const path = url.pathname.slice(wire.basePath.length);
    const adapter = wire.adapters.find((a) => a.matches(method, path));
    if (!adapter && !wire.passthrough(method, path))
      return reply(
        res,
        wire,
        'not_found',
        `No route for ${method} ${url.pathname} at the AutoDev model gateway.`,
      );

    let body: Buffer;
    try {
      body = await readBody(req, this.maxRequestBytes);
    } catch (err) {
      if (err instanceof RequestTooLarge)
        return reply(res, wire, 'bad_request', `Request body over ${this.maxRequestBytes} bytes.`);
      throw err;
    }
    let info: RequestInfo | undefined;
    if (adapter) {
      const parsed = parseJson(body);
      if (parsed === undefined) return reply(res, wire, 'bad_request', 'The request body is not valid JSON.');
      info = adapter.inspect(parsed, path);
      if (info.rewritten !== undefined) body = Buffer.from(JSON.stringify(info.rewritten));
    }
    const refusal = await session.refusal(info);
    if (refusal) return reply(res, wire, refusal.kind, refusal.message);
    this.forward(req, res, { session, wire, adapter, info, path, url, body });
  }

  /** The open session whose credential the request carries, in any vendor's place for it. */
  private sessionOf(headers: IncomingHttpHeaders, url: URL): GatewaySession | undefined {
    for (const wire of Object.values(WIRES)) {
      const credential = wire.credentialOf(headers, url);
      const session = credential ? this.sessions.get(credential) : undefined;
      if (session && session.provider === wire.vendor && !session.closed) return session;
    }
    return undefined;
  }

  private forward(req: IncomingMessage, res: ServerResponse, call: Call): void {
    const { session, wire, url, body } = call;
    const target = new URL(session.options.upstream.replace(/\/+$/, '') + call.path);
    target.search = url.search;
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers))
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    wire.authorize(headers, target, session.options.realKey, req.headers);
    headers['content-length'] = body.length;
    headers['accept-encoding'] = 'identity'; // usage is read from the bytes as they pass
    const started = this.now();
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = send(target, { method: req.method, headers });
    const meter = new CallMeter(this, call, started);
    upstream.setTimeout(this.upstreamIdleMs, () =>
      upstream.destroy(new Error('upstream silent for too long')),
    );
    upstream.on('response', (up) => this.relay(up, res, upstream, meter));
    upstream.on('error', () => {
      if (!res.headersSent)
        reply(res, wire, 'upstream_unreachable', `The provider at ${target.origin} could not be reached.`);
      else res.destroy();
      meter.finish();
    });
    // the client went away: stop the upstream call too
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.end(body);
  }

  private relay(up: IncomingMessage, res: ServerResponse, upstream: ClientRequest, meter: CallMeter): void {
    const status = up.statusCode ?? 502;
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(up.headers))
      if (
        name !== 'connection' &&
        name !== 'keep-alive' &&
        name !== 'transfer-encoding' &&
        value !== undefined
      )
        headers[name] = value;
    res.writeHead(status, headers);
    res.flushHeaders();
    if (RATE_LIMIT_STATUSES.has(status))
      meter.session.rateLimited(status, rateLimitResetAt(up.headers, this.now()), this.now());
    // the real key was refused: no retry by the CLI can mend it
    else if (status === 401)
      meter.session.keyRejected(status, new URL(meter.session.options.upstream).origin);
    meter.begin(status, String(up.headers['content-type'] ?? '').includes('text/event-stream'));
    up.on('data', (chunk: Buffer) => {
      res.write(chunk);
      meter.read(chunk);
    });
    up.on('end', () => {
      res.end();
      meter.finish();
    });
    up.on('error', () => {
      res.destroy();
      meter.finish();
    });
    upstream.on('close', () => {
      if (!up.complete) {
        res.destroy();
        meter.finish();
      }
    });
  }

  price(model: string | undefined) {
    return tokenPriceFor(model, this.prices);
  }

  time(): number {
    return this.now();
  }
}

interface Call {
  session: GatewaySession;
  wire: VendorWire;
  adapter: WireAdapter | undefined;
  info: RequestInfo | undefined;
  path: string;
  url: URL;
  body: Buffer;
}

/** Reads one call's answer as it passes and records it in the session's ledger once. */
class CallMeter {
  private reader: UsageReader | undefined;
  private sse: SseParser | undefined;
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;
  private status = 0;
  private readonly at: string;

  constructor(
    private readonly gateway: ModelGateway,
    private readonly call: Call,
    private readonly started: number,
  ) {
    this.at = new Date(started).toISOString();
    this.reader = call.adapter?.usageReader();
  }

  get session(): GatewaySession {
    return this.call.session;
  }

  begin(status: number, streaming: boolean): void {
    this.status = status;
    if (streaming) this.sse = new SseParser();
  }

  read(chunk: Buffer): void {
    if (!this.reader) return;
    if (this.sse) {
      for (const ev of this.sse.feed(chunk)) this.reader.event(ev);
      return;
    }
    this.size += chunk.length;
    if (this.size <= MAX_READ_BYTES) this.chunks.push(chunk);
  }

  /** Records the call: the upstream's status, or 0 when no answer came. */
  finish(): void {
    if (this.done || !this.reader) return;
    this.done = true;
    if (!this.sse && this.size > 0 && this.size <= MAX_READ_BYTES) {
      const parsed = parseJson(Buffer.concat(this.chunks));
      if (parsed !== undefined) this.reader.json(parsed);
    }
    const { model, tokens } = this.reader.result();
    const name = model ?? this.call.info?.model ?? 'unknown';
    const call = {
      at: this.at,
      provider: this.call.session.provider,
      model: name,
      ...tokens,
      costUsd: priceCall(tokens, this.call.session.options.price ?? this.gateway.price(name)),
      status: this.status,
      durationMs: this.gateway.time() - this.started,
    };
    this.call.session.record(call);
    const parent = this.call.session.options.traceContext?.();
    if (parent) recordModelCallSpan(parent, call, this.call.info?.model, this.started);
  }
}

function reply(res: ServerResponse, wire: VendorWire, kind: RefusalKind, message: string): void {
  const { status, body } = wire.error(kind, message);
  const text = JSON.stringify(body);
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  };
  // the Anthropic and OpenAI SDKs honour this: a refusal is final; an unreachable provider is not
  if (kind !== 'upstream_unreachable') headers['x-should-retry'] = 'false';
  res.writeHead(status, headers);
  res.end(text);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new RequestTooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
