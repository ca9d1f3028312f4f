import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where Debian and most distributions install git's smart HTTP CGI program. */
export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

export interface GitHttpServerOptions {
  /** Directory of the bare repositories served: `<root>/<owner>/<name>.git`. */
  root: string;
  /** HTTP basic credentials required for every request, when given. */
  auth?: { username: string; password: string };
}

export interface GitHttpRequest {
  method: string;
  path: string;
  service?: string;
  status: number;
}

export interface GitHttpServer {
  url: string;
  /** The clone URL of a repository under `root`: `urlFor('acme/remote.git')`. */
  urlFor(relPath: string): string;
  requests: GitHttpRequest[];
  close(): Promise<void>;
}

/**
 * A real git remote over smart HTTP: a node:http server that hands each request to
 * `git http-backend` as a CGI program (RFC 3875) and streams its answer back. Fetches and pushes go
 * through git's own protocol code, as they would to a forge.
 */
export async function startGitHttpServer(opts: GitHttpServerOptions): Promise<GitHttpServer> {
  const requests: GitHttpRequest[] = [];

  function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const record: GitHttpRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      service: url.searchParams.get('service') ?? url.pathname.match(/(git-[a-z-]+)$/)?.[1],
      status: 0,
    };
    requests.push(record);
    let user: string | undefined;
    if (opts.auth) {
      const given = req.headers.authorization?.match(/^Basic\s+(.+)$/i)?.[1];
      const [name, ...rest] = given ? Buffer.from(given, 'base64').toString('utf8').split(':') : [];
      if (name !== opts.auth.username || rest.join(':') !== opts.auth.password) {
        record.status = 401;
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-type': 'text/plain' });
        res.end('authentication required\n');
        return;
      }
      user = name;
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: opts.root,
      GIT_HTTP_EXPORT_ALL: '1',
      // http-backend refuses pushes from anonymous users unless told otherwise
      REMOTE_USER: user ?? 'anonymous',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      SERVER_PROTOCOL: 'HTTP/1.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      GIT_CONFIG_NOSYSTEM: '1',
    };
    if (req.headers['content-type']) env.CONTENT_TYPE = req.headers['content-type'];
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (typeof req.headers['git-protocol'] === 'string') env.GIT_PROTOCOL = req.headers['git-protocol'];

    const cgi = spawn(GIT_HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    req.pipe(cgi.stdin);
    cgi.stdin.on('error', () => {});
    let stderr = '';
    cgi.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    let head = Buffer.alloc(0);
    let headersSent = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersSent) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sep = end === crlf ? 4 : 2;
      const lines = head.subarray(0, end).toString('latin1').split(/\r?\n/);
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
        else headers[name] = value;
      }
      record.status = status;
      res.writeHead(status, headers);
      headersSent = true;
      const rest = head.subarray(end + sep);
      if (rest.length > 0) res.write(rest);
    });
    cgi.on('close', (code) => {
      if (!headersSent) {
        record.status = 500;
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`git http-backend exited with ${code}: ${stderr}`);
        return;
      }
      res.end();
    });
    cgi.on('error', (err) => {
      if (!headersSent) {
        record.status = 500;
        res.writeHead(500, { 'content-type': 'text/plain' });
      }
      res.end(String(err));
    });
  }

  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    urlFor: (relPath) => `${url}/${relPath.replace(/^\/+/, '')}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
