import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { dashboardCsp, type WebSignIn, webConfig } from '../core/web-policy.js';

export { DASHBOARD_CSP, dashboardCsp, type WebSignIn, webConfig } from '../core/web-policy.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const asset = (body: Buffer, type: string): Asset => ({
  body,
  type,
  etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
});

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

/**
 * The dashboard's files (`web/`), read once at start: only the files found then are served, by
 * exact path, so no request can name anything else on disk. They need no token; the API calls do.
 * With `signIn`, `/config.json` names the identity provider and the page may call its origin.
 */
export class WebAssets {
  private readonly files = new Map<string, Asset>();
  readonly csp: string;

  constructor(dir: string, signIn?: WebSignIn) {
    for (const file of walk(dir)) {
      const type = TYPES[extname(file)];
      if (!type) continue;
      this.files.set(`/${relative(dir, file).split(sep).join('/')}`, asset(readFileSync(file), type));
    }
    const index = this.files.get('/index.html');
    if (index) this.files.set('/', index);
    if (signIn) {
      const body = Buffer.from(JSON.stringify(webConfig(signIn)));
      this.files.set('/config.json', asset(body, 'application/json'));
    }
    this.csp = dashboardCsp(signIn ? [new URL(signIn.issuer).origin] : []);
  }

  has(pathname: string): boolean {
    return this.files.has(pathname);
  }

  /** Answers GET or HEAD of one file, with the page's security headers; 304 when the client has it. */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const asset = this.files.get(pathname) as Asset;
    const headers = {
      'content-type': asset.type,
      'content-security-policy': this.csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
      'cache-control': 'no-cache',
      etag: asset.etag,
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }
}
