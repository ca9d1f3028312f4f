import { describe, expect, it } from '@jest/globals';
import { KnownSecrets, secretsIn } from '../../../lib/worker/known-secrets.js';
import { scanDiff } from '../../../lib/worker/secret-scan.js';

const VALUE = 'whsec/Plain"Words+And=More';
const known = new KnownSecrets({ GITHUB_WEBHOOK_SECRET: VALUE, SHORT_TOKEN: 'abc' });

/** A diff that adds `lines` to `file`. */
const diffAdding = (file: string, lines: string[]) =>
  [
    `diff --git a/${file} b/${file}`,
    'new file mode 100644',
    '--- /dev/null',
    `+++ b/${file}`,
    `@@ -0,0 +1,${lines.length} @@`,
    ...lines.map((l) => `+${l}`),
  ].join('\n');

describe('the platform’s own secrets, in every form a commit carries them', () => {
  const base64At = (prefix: string) => Buffer.from(`${prefix}${VALUE} and more`).toString('base64');

  it.each([
    ['as it is', `secret: ${VALUE}`],
    ['base64 at offset 0', base64At('')],
    ['base64 at offset 1', base64At('x')],
    ['base64 at offset 2', base64At('xy')],
    ['URL-safe base64', base64At('x').replace(/\+/g, '-').replace(/\//g, '_')],
    ['hexadecimal', Buffer.from(VALUE).toString('hex')],
    ['upper-case hexadecimal', Buffer.from(VALUE).toString('hex').toUpperCase()],
    ['URL-encoded', `https://example.com/?s=${encodeURIComponent(VALUE)}`],
    ['JSON-escaped', JSON.stringify({ secret: VALUE })],
    ['reversed', [...VALUE].reverse().join('')],
    ['behind the allow marker', `${VALUE} // autodev:allow-secret`],
  ])('finds it %s, naming the variable and never the value', (_how, line) => {
    const findings = scanDiff(diffAdding('notes.txt', ['first line', line]), { known });
    const own = findings.filter((f) => f.rule === 'known_secret');
    expect(own).toEqual([
      { file: 'notes.txt', line: 2, rule: 'known_secret', redacted: 'the value of GITHUB_WEBHOOK_SECRET' },
    ]);
  });

  it('finds base64 wrapped over lines at 76 columns', () => {
    const encoded = Buffer.from(`${'padding '.repeat(8)}${VALUE}`).toString('base64');
    const lines = encoded.match(/.{1,76}/g) ?? [];
    expect(lines.length).toBeGreaterThan(1);
    const own = scanDiff(diffAdding('blob.b64', lines), { known }).filter((f) => f.rule === 'known_secret');
    expect(own).toHaveLength(1);
  });

  it('finds nothing in a change without it, and ignores values too short to look for', () => {
    expect(scanDiff(diffAdding('a.txt', ['abc abc', 'nothing here']), { known })).toEqual([]);
  });

  it('redacts every form in a log line', () => {
    const line = `got ${VALUE} then ${base64At('x')} and ${encodeURIComponent(VALUE)}`;
    const out = known.redact(line);
    expect(out).not.toContain(VALUE);
    expect(out).not.toContain(encodeURIComponent(VALUE));
    expect(out.match(/\[redacted GITHUB_WEBHOOK_SECRET\]/g)?.length).toBe(3);
  });

  it('takes the variables named as secrets from an environment, not those naming where one is', () => {
    expect(
      secretsIn({
        ANTHROPIC_API_KEY: 'k',
        GIT_TOKEN: 't',
        AUTODEV_GITHUB_WEBHOOK_SECRET: 's',
        SSH_AUTH_SOCK: '/tmp/agent',
        PROVIDER_SECRET_ARN: 'arn:aws:...',
        PATH: '/usr/bin',
      }),
    ).toEqual({ ANTHROPIC_API_KEY: 'k', GIT_TOKEN: 't', AUTODEV_GITHUB_WEBHOOK_SECRET: 's' });
  });
});
