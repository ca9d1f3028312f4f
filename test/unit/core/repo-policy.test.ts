import { describe, expect, it } from '@jest/globals';
import { ValidationError } from '../../../lib/core/errors.js';
import {
  canonicalHost,
  checkRepo,
  internalHost,
  type RepoPolicy,
  STRICT_REPO_POLICY,
} from '../../../lib/core/repo-policy.js';

/** Pure checks: no value here is ever resolved, fetched or cloned. */
const refused = (repo: string, policy: RepoPolicy = STRICT_REPO_POLICY, tenant = 'acme') => {
  try {
    checkRepo(repo, tenant, policy);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).details).toEqual([expect.objectContaining({ field: 'repo' })]);
    return (err as Error).message;
  }
  return undefined;
};

describe('the repository address policy', () => {
  it.each([
    'https://github.com/acme/app.git',
    'https://gitlab.example.com:8443/group/app.git',
    'ssh://git@github.com/acme/app.git',
    'git@github.com:acme/app.git',
    'github.com:acme/app.git',
    'https://[2606:4700::1111]/acme/app.git',
    'https://8.8.8.8/acme/app.git',
  ])('accepts the public address %s', (repo) => {
    expect(refused(repo)).toBeUndefined();
  });

  it.each([
    ['link-local metadata', 'https://169.254.169.254/latest/meta-data'],
    ['metadata as a decimal number', 'http://2852039166/x.git'],
    ['metadata in hex', 'https://0xa9fea9fe/x.git'],
    ['metadata in dotted hex and octal', 'https://0xa9.0376.0251.0376/x.git'],
    ['loopback', 'https://127.0.0.1/x.git'],
    ['loopback, short form', 'https://127.1/x.git'],
    ['loopback in octal', 'https://0177.0.0.1/x.git'],
    ['"this network"', 'https://0.0.0.0/x.git'],
    ['0 as a number', 'https://0/x.git'],
    ['private 10/8', 'https://10.1.2.3/x.git'],
    ['private 172.16/12', 'https://172.31.255.1/x.git'],
    ['private 192.168/16', 'ssh://git@192.168.1.1/x.git'],
    ['CGNAT', 'git@100.64.0.1:x.git'],
    ['IPv6 loopback', 'https://[::1]/x.git'],
    ['IPv6 unspecified', 'https://[::]/x.git'],
    ['IPv6 unique local', 'https://[fd00::1]/x.git'],
    ['IPv6 link-local', 'ssh://git@[fe80::1]/x.git'],
    ['IPv4-mapped metadata', 'https://[::ffff:169.254.169.254]/x.git'],
    ['IPv4-mapped loopback in hex', 'https://[::ffff:7f00:1]/x.git'],
    ['NAT64 of a private address', 'https://[64:ff9b::a00:1]/x.git'],
    ['6to4 of loopback', 'https://[2002:7f00:1::]/x.git'],
    ['localhost', 'https://localhost/x.git'],
    ['localhost with a trailing dot', 'https://LOCALHOST./x.git'],
    ['a name under localhost', 'https://git.localhost/x.git'],
    ['the GCP metadata name', 'http://metadata.google.internal/computeMetadata/v1/'],
    ['an ssh host in decimal', 'ssh://git@2130706433/x.git'],
    ['an scp-like host in decimal', 'git@2130706433:x.git'],
    ['a percent-encoded loopback', 'https://%31%32%37.0.0.1/x.git'],
  ])('refuses %s (%s) unless configured', (_what, repo) => {
    expect(refused(repo)).toMatch(/AUTODEV_ALLOWED_REPO_HOSTS/);
  });

  it('accepts an internal host the operator allowed, and plain http only for allowed hosts', () => {
    const policy: RepoPolicy = { allowedHosts: ['127.0.0.1', 'git.corp.example'], localRoots: {} };
    expect(refused('http://127.0.0.1:8080/x.git', policy)).toBeUndefined();
    expect(refused('https://2130706433/x.git', policy)).toBeUndefined();
    expect(refused('http://git.corp.example/x.git', policy)).toBeUndefined();
    expect(refused('http://github.com/acme/app.git', policy)).toMatch(/Plain http/);
    expect(refused('https://10.0.0.1/x.git', policy)).toMatch(/private/);
  });

  it.each([
    ['an option', '-oProxyCommand=touch /tmp/x'],
    ['an ssh host that is an option', 'ssh://-oProxyCommand=touch/x.git'],
    ['an scp user that is an option', '-u@github.com:x.git'],
    ['a NUL byte', 'https://github.com/a\0b.git'],
    ['a newline', 'https://github.com/a\nb.git'],
    ['a space', 'https://github.com/a b.git'],
    ['another scheme', 'ftp://github.com/x.git'],
    ['ext::', 'ext::sh -c touch% /tmp/pwned'],
    ['a remote helper', 'ext::sh'],
    ['an fd:: helper', 'fd::3'],
    ['a URL with no path', 'https://github.com'],
  ])('refuses %s', (_what, repo) => {
    expect(refused(repo)).toBeDefined();
  });

  describe('local paths', () => {
    const policy: RepoPolicy = {
      allowedHosts: [],
      localRoots: { acme: ['/srv/git/acme'], '*': ['/srv/git/shared'] },
    };

    it("accepts paths and file:// URLs under the tenant's directories and the shared ones", () => {
      expect(refused('/srv/git/acme/app.git', policy)).toBeUndefined();
      expect(refused('file:///srv/git/acme/app.git', policy)).toBeUndefined();
      expect(refused('/srv/git/shared/lib.git', policy, 'globex')).toBeUndefined();
    });

    it.each([
      ['the root', '/'],
      ['/etc/passwd', '/etc/passwd'],
      ["another tenant's directory", '/srv/git/globex/app.git'],
      ['a prefix that is not the directory', '/srv/git/acme-evil/app.git'],
      ['a way out with ..', '/srv/git/acme/../globex/app.git'],
      ['a file URL out with %2e%2e', 'file:///srv/git/acme/%2e%2e/globex/app.git'],
      ['a file URL with a host', 'file://server/srv/git/acme/app.git'],
    ])('refuses %s', (_what, repo) => {
      expect(refused(repo, policy)).toBeDefined();
    });

    it('refuses every local path where no directory is configured', () => {
      expect(refused('/srv/git/acme/app.git')).toMatch(/not accepted for this tenant/);
      expect(refused('file:///tmp/x.git')).toMatch(/not accepted for this tenant/);
    });
  });

  it('spells hosts as the URL parser does', () => {
    expect(canonicalHost('2852039166')).toBe('169.254.169.254');
    expect(canonicalHost('[::FFFF:169.254.169.254]')).toBe('[::ffff:a9fe:a9fe]');
    expect(internalHost('[::ffff:a9fe:a9fe]')).toMatch(/link-local/);
    expect(internalHost('github.com')).toBeUndefined();
  });
});
