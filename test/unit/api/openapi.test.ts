import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { docsPage } from '../../../lib/api/docs-page.js';
import { API_ROUTES } from '../../../lib/api/handler.js';
import { openApiDocument } from '../../../lib/api/openapi.js';
import { GATEWAY_ROUTES } from '../../../lib/local/http-gateway.js';
import { ROOT } from '../../support/local-platform.js';

type Doc = { openapi: string; paths: Record<string, Record<string, { security?: unknown[] }>> };

/** `METHOD /path` of every operation the description holds. */
function described(doc: Doc): string[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
  );
}

/** `METHOD /path` of every route the local server answers: the handler's table and the server's own. */
const answered = [...API_ROUTES, ...GATEWAY_ROUTES].map((r) => `${r.method} ${r.path}`);

describe('the OpenAPI description', () => {
  const doc = openApiDocument() as Doc;

  it('describes every route the server answers, and nothing else', () => {
    // Act
    const notDescribed = answered.filter((r) => !described(doc).includes(r));
    const notAnswered = described(doc).filter((r) => !answered.includes(r));
    // Assert
    expect({ notDescribed, notAnswered }).toEqual({ notDescribed: [], notAnswered: [] });
  });

  it('asks for the bearer token on every route but the open ones', () => {
    const open = API_ROUTES.filter((r) => r.open).map((r) => `${r.method} ${r.path}`);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const key = `${method.toUpperCase()} ${path}`;
        expect([key, op.security]).toEqual([key, open.includes(key) ? [] : [{ bearer: [] }]]);
      }
    }
  });

  it('passes `redocly lint` (OpenAPI 3.1) with the repository config, offline', async () => {
    // Arrange
    const file = join(mkdtempSync(join(tmpdir(), 'autodev-openapi-')), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    // Act: telemetry off, and any request out would go to a closed port on the loopback
    const dead = 'http://127.0.0.1:9';
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(
        join(ROOT, 'node_modules/.bin/redocly'),
        ['lint', '--config', join(ROOT, 'redocly.yaml'), '--format', 'stylish', file],
        {
          cwd: ROOT,
          timeout: 60_000,
          env: {
            ...process.env,
            REDOCLY_TELEMETRY: 'off',
            REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
            HTTP_PROXY: dead,
            HTTPS_PROXY: dead,
            http_proxy: dead,
            https_proxy: dead,
            NO_PROXY: '',
          },
        },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    // Assert
    expect(doc.openapi).toBe('3.1.0');
    expect([run.code, run.out]).toEqual([0, expect.stringContaining('Your API description is valid')]);
    expect(run.out).not.toMatch(/\d+ warnings?/);
  }, 90_000);

  it('renders every operation on the docs page, with a CSP that allows no script', () => {
    // Act
    const { html, csp } = docsPage(doc);
    // Assert
    for (const [path, ops] of Object.entries(doc.paths))
      for (const method of Object.keys(ops))
        expect(html).toContain(`${method.toUpperCase()}</span><code>${path}</code>`);
    expect(html).not.toMatch(/<script|https?:\/\/(?!json-schema\.org)/);
    expect(csp).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*';/);
    expect(csp).not.toContain('unsafe');
  });
});
