import { createHmac } from 'node:crypto';
import { type Agent, request } from 'node:http';
import fc from 'fast-check';

/**
 * The fuzz test's generators, client and checks (test/security/fuzz.test.ts). Plain module, no
 * test framework: it also runs in the worker thread that sends the requests (fuzz-worker.ts).
 */

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface FuzzAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** What exists on the server: ids of both tenants' tasks and a schedule, tokens good and bad, a repository. */
export interface FuzzSeed {
  ids: string[];
  tokens: string[];
  repo: string;
  /** The GitHub webhook's secret: some deliveries are signed with it. */
  secret: string;
}

export interface Route {
  method: string;
  path: string;
}

export function send(base: URL, agent: Agent, req: FuzzRequest): Promise<FuzzAnswer> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: req.path,
        headers: { ...req.headers, ...(req.body ? { 'content-length': String(req.body.length) } : {}) },
        agent,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const contentType = String(res.headers['content-type'] ?? '');
        // a followed log streams until the task ends: its answer's head is enough
        if (status === 200 && contentType.startsWith('text/plain') && /follow=/.test(req.path)) {
          res.destroy();
          resolve({ status, contentType, body: '' });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status, contentType, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    r.setTimeout(20_000, () =>
      r.destroy(new Error(`no answer in 20 s to ${req.method} ${req.path.slice(0, 200)}`)),
    );
    r.on('error', (err) =>
      reject(
        new Error(
          `${err.message}: ${req.method} ${req.path.slice(0, 300)} ${JSON.stringify(req.headers).slice(0, 500)} body ${req.body?.length ?? 0} bytes`,
        ),
      ),
    );
    r.end(req.body);
  });
}

/** Any text a header may carry (the client refuses control characters): latin-1 printable. */
const headerText = (maxLength = 200) =>
  fc.string({
    unit: fc
      .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff }))
      .map((c) => String.fromCharCode(c)),
    maxLength,
  });

/** The request generators; made once the seeded ids, tokens and repository exist. */
export function generators({ ids, tokens, repo, secret }: FuzzSeed) {
  const hostileText = fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '..',
        '../..',
        '../../etc/passwd',
        '%2e%2e%2f',
        '\u0000',
        '\u202e',
        'NaN',
        '-1',
        '1e309',
      ),
    },
    // long: a short piece repeated (cheap to make, as hostile to parse)
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }),
          fc.integer({ min: 500, max: 3000 }),
        )
        .map(([piece, n]) => piece.repeat(n)),
    },
  );
  const anyJson = fc.jsonValue({ maxDepth: 2 });

  /** A path segment: ids that exist (either tenant's), well-formed ones that do not, and junk. */
  const segment = () =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...ids, 'acme', 'globex').map(encodeURIComponent) },
      { weight: 2, arbitrary: fc.stringMatching(/^[ts][0-9a-z]{20}$/) },
      { weight: 3, arbitrary: hostileText.map(encodeURIComponent) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '%00', '%ff%fe', '..', '.', '~', '%2F', ':batch'),
      },
    );

  const QUERY_KEYS = [
    'status',
    'role',
    'limit',
    'cursor',
    'after',
    'follow',
    'action',
    'subject',
    'result',
    'since',
    'until',
  ];
  const query = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    {
      weight: 6,
      arbitrary: fc
        .dictionary(
          fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string({ maxLength: 10 })),
          fc.oneof(
            fc.constantFrom(
              'queued',
              'running',
              '0',
              '1',
              '500',
              '501',
              '-5',
              '1.5',
              'ok',
              'refused',
              '404',
              'true',
            ),
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            hostileText,
          ),
          { maxKeys: 4 },
        )
        .map((q) => `?${new URLSearchParams(q).toString()}`),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '?%',
        '?limit=%zz',
        '?a=1&a=2&a=3',
        '?follow=1',
        '?after=1&follow=true',
        '?&&&=',
      ),
    },
  );

  const path = (template: string) =>
    fc
      .record({
        params: fc.array(segment(), { minLength: 2, maxLength: 2 }),
        query,
        twist: fc.oneof(
          { weight: 12, arbitrary: fc.constant('') },
          { weight: 1, arbitrary: fc.constantFrom('/', '//', '/extra', '/..', '/%2e%2e') },
        ),
      })
      .map(({ params, query: q, twist }) => {
        let i = 0;
        const filled = template.replace(/\{\w+\}/g, () => params[i++ % 2] as string);
        return `${filled}${twist}${q}`;
      });

  const taskLike = fc.record(
    {
      repo: fc.oneof(
        fc.constant(repo),
        fc.constantFrom('https://github.com/a/b.git', 'file:///etc', 'http://169.254.169.254/x'),
        hostileText,
        fc.integer(),
      ),
      prompt: fc.oneof(
        { weight: 10, arbitrary: fc.string({ maxLength: 200 }) },
        { weight: 3, arbitrary: hostileText },
        { weight: 1, arbitrary: fc.constant('x'.repeat(100_001)) },
        { weight: 2, arbitrary: anyJson },
      ),
      role: fc.oneof(fc.constantFrom('backend', 'docs', 'nope'), anyJson),
      provider: fc.oneof(fc.constantFrom('claude', 'auto', 'nope'), anyJson),
      priority: fc.oneof(fc.constantFrom('high', 'normal', 'low'), anyJson),
      dependsOn: fc.oneof(fc.array(fc.constantFrom(...ids)), anyJson),
      limits: fc.oneof(
        fc.record(
          {
            timeoutSeconds: anyJson,
            cpu: anyJson,
            memoryMiB: fc.double(),
            maxCostUsd: fc.double(),
          },
          { requiredKeys: [] },
        ),
        anyJson,
      ),
      labels: fc.oneof(fc.array(fc.string({ maxLength: 300 })), anyJson),
      baseBranch: fc.oneof(fc.constantFrom('main', '../x', '-x', 'a..b'), hostileText),
    },
    { requiredKeys: [] },
  );
  const webhookLike = fc.record(
    {
      action: fc.constantFrom('opened', 'labeled', 'created', 'edited'),
      issue: fc.record(
        {
          number: fc.oneof(fc.integer(), anyJson),
          title: hostileText,
          body: hostileText,
          labels: anyJson,
        },
        { requiredKeys: [] },
      ),
      comment: fc.record(
        { body: fc.oneof(fc.constant('/autodev fix it'), hostileText), user: anyJson },
        { requiredKeys: [] },
      ),
      repository: fc.record(
        {
          full_name: fc.oneof(fc.constant('acme/app'), hostileText),
          clone_url: fc.oneof(fc.constant(repo), hostileText),
        },
        { requiredKeys: [] },
      ),
      label: anyJson,
    },
    { requiredKeys: [] },
  );
  const json = (arb: fc.Arbitrary<unknown>) => arb.map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
  const body = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: json(taskLike) },
    {
      weight: 2,
      arbitrary: json(
        fc.record(
          {
            name: hostileText,
            schedule: fc.oneof(
              fc.constantFrom('rate(1 day)', 'cron(0 3 * * ? *)', 'rate(0 minutes)'),
              hostileText,
            ),
            timezone: fc.oneof(fc.constantFrom('UTC', 'Mars/Base'), hostileText),
            task: taskLike,
            enabled: anyJson,
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { weight: 2, arbitrary: json(webhookLike) },
    { weight: 3, arbitrary: fc.json({ maxDepth: 3 }).map((t) => Buffer.from(t)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '{',
          '[[[[',
          '{"a":',
          '"\\ud800"',
          '\u0000',
          '1e400',
          '[]'.repeat(3000),
          `${'['.repeat(5000)}${']'.repeat(5000)}`,
        )
        .map((t) => Buffer.from(t)),
    },
  );
  const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

  const fuzzRequest = (route: { method: string; path: string }): fc.Arbitrary<FuzzRequest> =>
    fc
      .record({
        method: fc.oneof(
          { weight: 9, arbitrary: fc.constant(route.method) },
          { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
        ),
        path: path(route.path),
        token: fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom(...tokens).map((t) => `Bearer ${t}`) },
          { weight: 1, arbitrary: headerText() },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ),
        contentType: fc.option(fc.oneof(fc.constant('application/json'), headerText(60)), {
          nil: undefined,
        }),
        idempotencyKey: fc.option(headerText(300), { nil: undefined, freq: 3 }),
        github: fc.option(
          fc.record({
            event: fc.oneof(fc.constantFrom('issues', 'issue_comment', 'ping'), headerText(30)),
            delivery: headerText(80),
            signed: fc.boolean(),
            signature: headerText(90),
          }),
          { nil: undefined, freq: 3 },
        ),
        body,
      })
      .map((r) => {
        const headers: Record<string, string> = {};
        if (r.token !== undefined) headers.authorization = r.token;
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey;
        if (r.github) {
          headers['x-github-event'] = r.github.event;
          headers['x-github-delivery'] = r.github.delivery;
          headers['x-hub-signature-256'] = r.github.signed
            ? `sha256=${createHmac('sha256', secret)
                .update(r.body ?? Buffer.alloc(0))
                .digest('hex')}`
            : r.github.signature;
        }
        // a GET with a body is still sent: the server must not care
        return { method: r.method, path: r.path, headers, body: r.body };
      });
  return fuzzRequest;
}

/** What every answer must be: no 5xx; a 4xx says what is wrong in the error shape. */
export function check(req: FuzzRequest, res: FuzzAnswer): void {
  const what = `${req.method} ${req.path.slice(0, 300)} → ${res.status} ${res.body.slice(0, 300)}`;
  if (res.status >= 500 || res.status < 100) throw new Error(`server error: ${what}`);
  if (res.status < 400 || req.method === 'HEAD') return;
  if (!res.contentType.startsWith('application/json'))
    throw new Error(`a ${res.status} that is not JSON: ${what}`);
  const error = (JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } }).error;
  if (typeof error?.code !== 'string' || !error.code || typeof error.message !== 'string' || !error.message) {
    throw new Error(`a ${res.status} without error.code and error.message: ${what}`);
  }
}

/**
 * Sends `total` generated requests for one route, `batch` at a time (one fast-check run each), and
 * checks every answer; throws with the seed and the first failing request.
 */
export async function fuzzRoute(opts: {
  base: URL;
  agent: Agent;
  seed: FuzzSeed;
  route: Route;
  total: number;
  batch: number;
}): Promise<number> {
  const requests = generators(opts.seed)(opts.route);
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(requests, { minLength: opts.batch, maxLength: opts.batch }), async (batch) => {
      const answers = await Promise.all(batch.map((r) => send(opts.base, opts.agent, r)));
      sent += batch.length;
      for (const [i, req] of batch.entries()) check(req, answers[i] as FuzzAnswer);
    }),
    {
      numRuns: Math.ceil(opts.total / opts.batch),
      endOnFailure: true,
      // the failing request, not the whole batch
      reporter: (run) => {
        if (run.failed) throw new Error(`seed ${run.seed}: ${String(run.errorInstance)}`);
      },
    },
  );
  return sent;
}
