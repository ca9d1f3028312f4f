import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { paths } from '@octokit/openapi-types';
import { importSPKI, jwtVerify } from 'jose';
import { z } from 'zod';

/**
 * A local forge for tests: the GitHub REST routes the GitHub adapter uses (served under `/api/v3`, as
 * GitHub Enterprise Server does, with the draft-state GraphQL mutations at `/api/graphql`) and the GitLab v4 routes of the GitLab adapter (under `/api/v4`),
 * with state in memory. Every request is validated: GitHub routes against GitHub's published OpenAPI
 * description (`@octokit/openapi-types`: each path template must be a path of the description and
 * each body and query schema must fit the operation's, checked by the compiler; unknown fields are
 * refused at run time), GitLab routes against the fields of GitLab's REST documentation. A request
 * that does not validate is answered 422 and recorded in `violations`.
 */

// ---------------------------------------------------------------- OpenAPI fit, checked by tsc

type Method = 'get' | 'post' | 'patch' | 'put';
type JsonBody<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
type StatusOf<O> = O extends { responses: infer R } ? keyof R : never;
/** `unknown` when every value S allows is valid T and S names no field T lacks; an error type otherwise. */
type Fits<S, T> = [S] extends [T]
  ? [Exclude<keyof S, keyof T>] extends [never]
    ? unknown
    : { error: 'fields unknown to the OpenAPI operation'; fields: Exclude<keyof S, keyof T> }
  : { error: 'does not fit the OpenAPI operation' };

interface GitHubRoute {
  method: Method;
  path: string;
  pattern: RegExp;
  params: string[];
  status: number;
  body?: z.ZodType;
  query?: z.ZodType;
  handle: (ctx: GitHubContext) => Promise<unknown> | unknown;
}

interface GitHubContext {
  params: Record<string, string>;
  body: unknown;
  query: unknown;
  auth: string | undefined;
}

function githubRoute<
  P extends keyof paths,
  M extends Method & keyof paths[P],
  B extends z.ZodType,
  Q extends z.ZodType,
>(
  method: M,
  path: P,
  spec: {
    status: StatusOf<paths[P][M]>;
    body?: B & Fits<z.output<B>, JsonBody<paths[P][M]>>;
    query?: Q & Fits<z.output<Q>, QueryOf<paths[P][M]>>;
  },
  handle: (ctx: {
    params: Record<string, string>;
    body: z.output<B>;
    query: z.output<Q>;
    auth: string | undefined;
  }) => Promise<unknown> | unknown,
): GitHubRoute {
  const params: string[] = [];
  const pattern = new RegExp(
    `^${path.replace(/\{(\w+)\}/g, (_, name: string) => {
      params.push(name);
      return '([^/]+)';
    })}$`,
  );
  return {
    method,
    path,
    pattern,
    params,
    status: Number(spec.status),
    body: spec.body,
    query: spec.query,
    handle: handle as GitHubRoute['handle'],
  };
}

// ---------------------------------------------------------------- state

export interface FakePull {
  number: number;
  owner: string;
  repo: string;
  title: string;
  body: string;
  head: string;
  base: string;
  draft: boolean;
  state: 'open' | 'closed';
  labels: string[];
  comments: string[];
  reviews: { event: string; body: string; comments: { path: string; line?: number; body: string }[] }[];
}

export interface FakeMergeRequest {
  iid: number;
  project: string;
  title: string;
  description: string;
  source_branch: string;
  target_branch: string;
  state: 'opened' | 'closed' | 'merged';
  labels: string[];
  notes: string[];
  discussions: { body: string; position: Record<string, unknown> }[];
  approved: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

export interface ForgeServerOptions {
  /** Tokens accepted by the GitHub routes (`Authorization: token …`) and GitLab (`PRIVATE-TOKEN`). */
  tokens?: string[];
  /** A GitHub App whose JWTs (RS256, signed with its private key) may create installation tokens. */
  app?: { appId: string; publicKeyPem: string; installationId: string };
  /** GitHub refuses APPROVE / REQUEST_CHANGES, as it does on the token owner's own pull requests. */
  ownPullRequests?: boolean;
  /** Whether a branch exists on the git remote; GitHub refuses pull requests from missing branches. */
  branchExists?: (repoPath: string, branch: string) => boolean;
}

/** The GitHub routes the fake serves: method and OpenAPI path template. */
export const GITHUB_ROUTES: readonly { method: string; path: string }[] = [
  { method: 'GET', path: '/repos/{owner}/{repo}/pulls' },
  { method: 'POST', path: '/repos/{owner}/{repo}/pulls' },
  { method: 'PATCH', path: '/repos/{owner}/{repo}/pulls/{pull_number}' },
  { method: 'POST', path: '/repos/{owner}/{repo}/issues/{issue_number}/labels' },
  { method: 'POST', path: '/repos/{owner}/{repo}/issues/{issue_number}/comments' },
  { method: 'POST', path: '/repos/{owner}/{repo}/pulls/{pull_number}/reviews' },
  { method: 'POST', path: '/app/installations/{installation_id}/access_tokens' },
];

export interface ForgeServer {
  url: string;
  /** `url` + `/api/v3`: the GitHub API base. */
  githubApi: string;
  /** `url` + `/api/v4`: the GitLab API base. */
  gitlabApi: string;
  pulls: FakePull[];
  mergeRequests: FakeMergeRequest[];
  requests: RecordedRequest[];
  violations: string[];
  /** Installation tokens issued to the App. */
  issuedTokens: string[];
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

// ---------------------------------------------------------------- GitHub schemas

const PullsListQuery = z
  .object({
    state: z.enum(['open', 'closed', 'all']).optional(),
    head: z.string().optional(),
    base: z.string().optional(),
    per_page: z.coerce.number().int().min(1).max(100).optional(),
    page: z.coerce.number().int().min(1).optional(),
  })
  .strict();
const PullsCreateBody = z
  .object({
    title: z.string().min(1),
    head: z.string().min(1),
    base: z.string().min(1),
    body: z.string().optional(),
    draft: z.boolean().optional(),
    maintainer_can_modify: z.boolean().optional(),
  })
  .strict();
const PullsUpdateBody = z
  .object({
    title: z.string().min(1).optional(),
    body: z.string().optional(),
    base: z.string().min(1).optional(),
    state: z.enum(['open', 'closed']).optional(),
  })
  .strict();
const AddLabelsBody = z.object({ labels: z.array(z.string().min(1)).min(1) }).strict();
const CommentBody = z.object({ body: z.string().min(1) }).strict();
const CreateReviewBody = z
  .object({
    commit_id: z.string().optional(),
    body: z.string().optional(),
    event: z.enum(['APPROVE', 'REQUEST_CHANGES', 'COMMENT']).optional(),
    comments: z
      .array(
        z
          .object({
            path: z.string().min(1),
            line: z.number().int().positive().optional(),
            side: z.enum(['LEFT', 'RIGHT']).optional(),
            body: z.string().min(1),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();
const InstallationTokenBody = z
  .object({ repositories: z.array(z.string()).optional(), repository_ids: z.array(z.number()).optional() })
  .strict();

const GraphqlBody = z
  .object({ query: z.string(), variables: z.object({ id: z.string().min(1) }).strict() })
  .strict();
const DRAFT_MUTATION =
  /^mutation\(\$id: ID!\) \{ (convertPullRequestToDraft|markPullRequestReadyForReview)\(input: \{ pullRequestId: \$id \}\) \{ pullRequest \{ isDraft \} \} \}$/;

// ---------------------------------------------------------------- GitLab schemas (REST v4 docs)

const GitLabListQuery = z
  .object({
    state: z.enum(['opened', 'closed', 'locked', 'merged', 'all']).optional(),
    source_branch: z.string().optional(),
    target_branch: z.string().optional(),
    per_page: z.coerce.number().int().min(1).max(100).optional(),
    page: z.coerce.number().int().min(1).optional(),
  })
  .strict();
const GitLabCreateBody = z
  .object({
    source_branch: z.string().min(1),
    target_branch: z.string().min(1),
    title: z.string().min(1),
    description: z.string().max(1_048_576).optional(),
    labels: z.string().optional(),
    remove_source_branch: z.boolean().optional(),
    squash: z.boolean().optional(),
  })
  .strict();
const GitLabUpdateBody = z
  .object({
    title: z.string().min(1).optional(),
    description: z.string().optional(),
    target_branch: z.string().min(1).optional(),
    labels: z.string().optional(),
    add_labels: z.string().optional(),
    remove_labels: z.string().optional(),
    state_event: z.enum(['close', 'reopen']).optional(),
  })
  .strict();
const GitLabNoteBody = z.object({ body: z.string().min(1) }).strict();
const GitLabDiscussionBody = z
  .object({
    body: z.string().min(1),
    position: z
      .object({
        position_type: z.literal('text'),
        base_sha: z.string().min(1),
        start_sha: z.string().min(1),
        head_sha: z.string().min(1),
        old_path: z.string().optional(),
        new_path: z.string().optional(),
        new_line: z.number().int().positive().optional(),
        old_line: z.number().int().positive().optional(),
      })
      .strict(),
  })
  .strict();

// ---------------------------------------------------------------- server

export async function startForgeServer(opts: ForgeServerOptions = {}): Promise<ForgeServer> {
  const tokens = new Set(opts.tokens ?? []);
  const pulls: FakePull[] = [];
  const mergeRequests: FakeMergeRequest[] = [];
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const issuedTokens: string[] = [];
  let base = '';
  const appKey = opts.app ? await importSPKI(opts.app.publicKeyPem, 'RS256') : undefined;

  const nodeId = (p: FakePull) =>
    `PR_${Buffer.from(`${p.owner}/${p.repo}#${p.number}`).toString('base64url')}`;
  const htmlUrl = (p: FakePull) => `${base}/${p.owner}/${p.repo}/pull/${p.number}`;
  const pullJson = (p: FakePull) => ({
    id: p.number * 1000,
    node_id: nodeId(p),
    number: p.number,
    html_url: htmlUrl(p),
    url: `${base}/api/v3/repos/${p.owner}/${p.repo}/pulls/${p.number}`,
    state: p.state,
    title: p.title,
    body: p.body,
    draft: p.draft,
    head: { ref: p.head, label: `${p.owner}:${p.head}` },
    base: { ref: p.base, label: `${p.owner}:${p.base}` },
    labels: p.labels.map((name) => ({ name })),
  });
  const findPull = (params: Record<string, string>, key: 'pull_number' | 'issue_number') => {
    const p = pulls.find(
      (x) => x.owner === params.owner && x.repo === params.repo && String(x.number) === params[key],
    );
    if (!p) throw new HttpError(404, { message: 'Not Found' });
    return p;
  };
  const requireToken = (auth: string | undefined) => {
    const token = auth?.match(/^(?:token|bearer)\s+(.+)$/i)?.[1];
    if (!token || !tokens.has(token)) throw new HttpError(401, { message: 'Bad credentials' });
  };

  const githubRoutes: GitHubRoute[] = [
    githubRoute(
      'get',
      '/repos/{owner}/{repo}/pulls',
      { status: 200, query: PullsListQuery },
      ({ params, query, auth }) => {
        requireToken(auth);
        const [headOwner, headBranch] = query.head?.includes(':')
          ? query.head.split(':')
          : [undefined, query.head];
        const list = pulls.filter(
          (p) =>
            p.owner === params.owner &&
            p.repo === params.repo &&
            (query.state === 'all' || p.state === (query.state ?? 'open')) &&
            (headBranch === undefined || (p.head === headBranch && (!headOwner || headOwner === p.owner))),
        );
        return list.slice(0, query.per_page ?? 30).map(pullJson);
      },
    ),
    githubRoute(
      'post',
      '/repos/{owner}/{repo}/pulls',
      { status: 201, body: PullsCreateBody },
      ({ params, body, auth }) => {
        requireToken(auth);
        const owner = params.owner as string;
        const repo = params.repo as string;
        if (opts.branchExists && !opts.branchExists(`${owner}/${repo}`, body.head)) {
          throw new HttpError(422, {
            message: 'Validation Failed',
            errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }],
          });
        }
        if (
          pulls.some(
            (p) => p.owner === owner && p.repo === repo && p.head === body.head && p.state === 'open',
          )
        ) {
          throw new HttpError(422, {
            message: 'Validation Failed',
            errors: [
              {
                resource: 'PullRequest',
                code: 'custom',
                message: `A pull request already exists for ${owner}:${body.head}.`,
              },
            ],
          });
        }
        const pull: FakePull = {
          number: pulls.filter((p) => p.owner === owner && p.repo === repo).length + 1,
          owner,
          repo,
          title: body.title,
          body: body.body ?? '',
          head: body.head,
          base: body.base,
          draft: body.draft ?? false,
          state: 'open',
          labels: [],
          comments: [],
          reviews: [],
        };
        pulls.push(pull);
        return pullJson(pull);
      },
    ),
    githubRoute(
      'patch',
      '/repos/{owner}/{repo}/pulls/{pull_number}',
      { status: 200, body: PullsUpdateBody },
      ({ params, body, auth }) => {
        requireToken(auth);
        const p = findPull(params, 'pull_number');
        if (body.title !== undefined) p.title = body.title;
        if (body.body !== undefined) p.body = body.body;
        if (body.base !== undefined) p.base = body.base;
        if (body.state !== undefined) p.state = body.state;
        return pullJson(p);
      },
    ),
    githubRoute(
      'post',
      '/repos/{owner}/{repo}/issues/{issue_number}/labels',
      { status: 200, body: AddLabelsBody },
      ({ params, body, auth }) => {
        requireToken(auth);
        const p = findPull(params, 'issue_number');
        for (const l of body.labels) if (!p.labels.includes(l)) p.labels.push(l);
        return p.labels.map((name, i) => ({ id: i + 1, name, color: 'ededed', default: false }));
      },
    ),
    githubRoute(
      'post',
      '/repos/{owner}/{repo}/issues/{issue_number}/comments',
      { status: 201, body: CommentBody },
      ({ params, body, auth }) => {
        requireToken(auth);
        const p = findPull(params, 'issue_number');
        p.comments.push(body.body);
        return {
          id: p.comments.length,
          body: body.body,
          html_url: `${htmlUrl(p)}#issuecomment-${p.comments.length}`,
        };
      },
    ),
    githubRoute(
      'post',
      '/repos/{owner}/{repo}/pulls/{pull_number}/reviews',
      { status: 200, body: CreateReviewBody },
      ({ params, body, auth }) => {
        requireToken(auth);
        const p = findPull(params, 'pull_number');
        const event = body.event ?? 'PENDING';
        if (opts.ownPullRequests && (event === 'APPROVE' || event === 'REQUEST_CHANGES')) {
          throw new HttpError(422, {
            message: 'Unprocessable Entity',
            errors: [
              `Can not ${event === 'APPROVE' ? 'approve' : 'request changes on'} your own pull request`,
            ],
          });
        }
        p.reviews.push({ event, body: body.body ?? '', comments: body.comments ?? [] });
        return {
          id: p.reviews.length,
          state: event === 'APPROVE' ? 'APPROVED' : event,
          body: body.body ?? '',
        };
      },
    ),
    githubRoute(
      'post',
      '/app/installations/{installation_id}/access_tokens',
      { status: 201, body: InstallationTokenBody },
      async ({ params, auth }) => {
        const jwt = auth?.match(/^bearer\s+(.+)$/i)?.[1];
        if (!opts.app || !appKey || !jwt)
          throw new HttpError(401, { message: 'A JSON web token could not be decoded' });
        try {
          const { payload } = await jwtVerify(jwt, appKey, { algorithms: ['RS256'] });
          if (String(payload.iss) !== opts.app.appId) throw new Error('wrong issuer');
          if (!payload.exp || !payload.iat || payload.exp - payload.iat > 600)
            throw new Error('bad lifetime');
        } catch {
          throw new HttpError(401, { message: "'Issuer' claim ('iss') must be an Integer" });
        }
        if (params.installation_id !== opts.app.installationId)
          throw new HttpError(404, { message: 'Not Found' });
        const token = `ghs_${issuedTokens.length + 1}${'x'.repeat(30)}`;
        issuedTokens.push(token);
        tokens.add(token);
        return {
          token,
          expires_at: new Date(Date.now() + 3600_000).toISOString(),
          permissions: { pull_requests: 'write', issues: 'write' },
          repository_selection: 'all',
        };
      },
    ),
  ];

  const served = githubRoutes.map((r) => `${r.method.toUpperCase()} ${r.path}`).join('\n');
  if (served !== GITHUB_ROUTES.map((r) => `${r.method} ${r.path}`).join('\n')) {
    throw new Error(`GITHUB_ROUTES does not list the routes served:\n${served}`);
  }

  const mrJson = (m: FakeMergeRequest) => ({
    id: m.iid * 1000,
    iid: m.iid,
    project_id: 1,
    title: m.title,
    description: m.description,
    state: m.state,
    draft: /^(draft:|\[draft\]|\(draft\))/i.test(m.title),
    source_branch: m.source_branch,
    target_branch: m.target_branch,
    labels: m.labels,
    web_url: `${base}/${m.project}/-/merge_requests/${m.iid}`,
    diff_refs: { base_sha: 'a'.repeat(40), head_sha: 'b'.repeat(40), start_sha: 'a'.repeat(40) },
  });
  const splitLabels = (s: string | undefined) =>
    (s ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean);

  async function gitlab(
    method: string,
    segments: string[],
    query: URLSearchParams,
    raw: string,
    headers: IncomingMessage['headers'],
  ) {
    const token = headers['private-token'];
    if (typeof token !== 'string' || !tokens.has(token))
      throw new HttpError(401, { message: '401 Unauthorized' });
    // /projects/:id/merge_requests[/:iid[/notes|/discussions|/approve]]
    if (segments[0] !== 'projects' || segments[2] !== 'merge_requests' || segments.length > 5) {
      throw new HttpError(404, { message: '404 Not Found' });
    }
    const project = segments[1] as string;
    const iid = segments[3];
    const sub = segments[4];
    const parse = <S extends z.ZodType>(schema: S, value: unknown): z.output<S> => {
      const r = schema.safeParse(value);
      if (!r.success) {
        violations.push(`GitLab ${method} ${segments.join('/')}: ${r.error.message}`);
        throw new HttpError(400, { message: r.error.message });
      }
      return r.data;
    };
    const body = () => parse(z.unknown(), raw ? JSON.parse(raw) : {});
    const find = () => {
      const m = mergeRequests.find((x) => x.project === project && String(x.iid) === iid);
      if (!m) throw new HttpError(404, { message: '404 Not found' });
      return m;
    };
    if (iid === undefined && method === 'GET') {
      const q = parse(GitLabListQuery, Object.fromEntries(query));
      return [
        200,
        mergeRequests
          .filter(
            (m) =>
              m.project === project &&
              (q.state === undefined || q.state === 'all' || m.state === q.state) &&
              (q.source_branch === undefined || m.source_branch === q.source_branch),
          )
          .slice(0, q.per_page ?? 20)
          .map(mrJson),
      ] as const;
    }
    if (iid === undefined && method === 'POST') {
      const b = parse(GitLabCreateBody, body());
      const open = mergeRequests.find(
        (m) => m.project === project && m.source_branch === b.source_branch && m.state === 'opened',
      );
      if (open) {
        throw new HttpError(409, {
          message: [`Another open merge request already exists for this source branch: !${open.iid}`],
        });
      }
      const m: FakeMergeRequest = {
        iid: mergeRequests.filter((x) => x.project === project).length + 1,
        project,
        title: b.title,
        description: b.description ?? '',
        source_branch: b.source_branch,
        target_branch: b.target_branch,
        state: 'opened',
        labels: splitLabels(b.labels),
        notes: [],
        discussions: [],
        approved: false,
      };
      mergeRequests.push(m);
      return [201, mrJson(m)] as const;
    }
    if (iid !== undefined && sub === undefined && method === 'GET') return [200, mrJson(find())] as const;
    if (iid !== undefined && sub === undefined && method === 'PUT') {
      const b = parse(GitLabUpdateBody, body());
      const m = find();
      if (b.title !== undefined) m.title = b.title;
      if (b.description !== undefined) m.description = b.description;
      if (b.target_branch !== undefined) m.target_branch = b.target_branch;
      if (b.labels !== undefined) m.labels = splitLabels(b.labels);
      for (const l of splitLabels(b.add_labels)) if (!m.labels.includes(l)) m.labels.push(l);
      return [200, mrJson(m)] as const;
    }
    if (sub === 'notes' && method === 'POST') {
      const b = parse(GitLabNoteBody, body());
      const m = find();
      m.notes.push(b.body);
      return [201, { id: m.notes.length, body: b.body }] as const;
    }
    if (sub === 'discussions' && method === 'POST') {
      const b = parse(GitLabDiscussionBody, body());
      const m = find();
      m.discussions.push({ body: b.body, position: b.position });
      return [201, { id: String(m.discussions.length), notes: [{ body: b.body }] }] as const;
    }
    if (sub === 'approve' && method === 'POST') {
      const m = find();
      if (opts.ownPullRequests) throw new HttpError(401, { message: '401 Unauthorized' });
      m.approved = true;
      return [201, mrJson(m)] as const;
    }
    throw new HttpError(404, { message: '404 Not Found' });
  }

  /** The two GraphQL mutations that change a pull request's draft state (REST cannot). */
  function graphql(body: unknown, headers: IncomingMessage['headers']) {
    requireToken(typeof headers.authorization === 'string' ? headers.authorization : undefined);
    const parsed = GraphqlBody.safeParse(body);
    const m = parsed.success ? parsed.data.query.match(DRAFT_MUTATION) : null;
    if (!parsed.success || !m) {
      violations.push(`GitHub GraphQL: not a draft-state mutation: ${JSON.stringify(body).slice(0, 300)}`);
      return { errors: [{ message: 'Parse error' }] };
    }
    const mutation = m[1] as string;
    const pull = pulls.find((p) => nodeId(p) === parsed.data.variables.id);
    if (!pull)
      return {
        data: { [mutation]: null },
        errors: [{ type: 'NOT_FOUND', message: 'Could not resolve to a node' }],
      };
    pull.draft = mutation === 'convertPullRequestToDraft';
    return { data: { [mutation]: { pullRequest: { isDraft: pull.draft } } } };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', base);
    const method = (req.method ?? 'GET').toUpperCase();
    let parsedBody: unknown;
    try {
      parsedBody = raw ? JSON.parse(raw) : undefined;
    } catch {
      parsedBody = raw;
    }
    requests.push({ method, path: url.pathname + url.search, body: parsedBody });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    try {
      if (url.pathname.startsWith('/api/v4/')) {
        const segments = url.pathname.slice('/api/v4/'.length).split('/').map(decodeURIComponent);
        const [status, body] = await gitlab(method, segments, url.searchParams, raw, req.headers);
        return send(status, body);
      }
      if (url.pathname === '/api/graphql' && method === 'POST')
        return send(200, graphql(parsedBody, req.headers));
      if (!url.pathname.startsWith('/api/v3/')) throw new HttpError(404, { message: 'Not Found' });
      const path = url.pathname.slice('/api/v3'.length);
      const route = githubRoutes.find((r) => r.method === method.toLowerCase() && r.pattern.test(path));
      if (!route) {
        violations.push(`GitHub: no route in the OpenAPI list for ${method} ${path}`);
        throw new HttpError(404, { message: 'Not Found' });
      }
      const m = path.match(route.pattern) as RegExpMatchArray;
      const params = Object.fromEntries(
        route.params.map((name, i) => [name, decodeURIComponent(m[i + 1] ?? '')]),
      );
      const check = (schema: z.ZodType | undefined, value: unknown, what: string) => {
        if (!schema) {
          if (what === 'query' && [...url.searchParams].length > 0) {
            violations.push(`GitHub ${method} ${route.path}: query parameters on a route that takes none`);
          }
          return value;
        }
        const r = schema.safeParse(value);
        if (!r.success) {
          violations.push(`GitHub ${method} ${route.path} ${what}: ${r.error.message}`);
          throw new HttpError(422, { message: 'Invalid request.', errors: r.error.issues });
        }
        return r.data;
      };
      const body = check(route.body, parsedBody ?? {}, 'body');
      const query = check(route.query, Object.fromEntries(url.searchParams), 'query');
      const auth = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
      const result = await route.handle({ params, body, query, auth });
      return send(route.status, result);
    } catch (err) {
      if (err instanceof HttpError) return send(err.status, err.body);
      return send(500, { message: (err as Error).message });
    }
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    githubApi: `${base}/api/v3`,
    gitlabApi: `${base}/api/v4`,
    pulls,
    mergeRequests,
    requests,
    violations,
    issuedTokens,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
