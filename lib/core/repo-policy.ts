import { posix } from 'node:path';
import { ValidationError } from './errors.js';

/**
 * Which repository addresses a tenant may name. Pure: literal addresses and names only, no DNS (a
 * public name that resolves to a private address is the network's to stop).
 */
export interface RepoPolicy {
  /**
   * Hosts accepted although they are loopback, private, link-local or otherwise internal (names or
   * literal addresses, as the operator configured them). Also the only hosts plain `http://` may name.
   */
  allowedHosts: readonly string[];
  /**
   * Per tenant, the directories under which local paths and `file://` URLs are accepted; the key `*`
   * applies to every tenant. Empty: no local repositories at all (the cloud).
   */
  localRoots: Readonly<Record<string, readonly string[]>>;
  /**
   * Resolves a local path the way the file system will (symbolic links followed), so that a link
   * inside an allowed directory cannot name a repository outside it. Given by the adapter that owns
   * the file system; a path that does not resolve is returned as written.
   */
  resolveLocalPath?: (path: string) => string;
}

/** Remote repositories only, public hosts only: what the cloud accepts. */
export const STRICT_REPO_POLICY: RepoPolicy = { allowedHosts: [], localRoots: {} };

/** Names that always mean this machine or a cloud metadata service. */
const INTERNAL_NAMES = [
  'localhost',
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
];

/** IPv4 ranges that are not the public internet: [first address, prefix length, what it is]. */
const IPV4_INTERNAL: readonly [string, number, string][] = [
  ['0.0.0.0', 8, '"this network"'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

function ipv4ToInt(s: string): number | undefined {
  const m = s.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

function classifyIpv4(n: number): string | undefined {
  for (const [base, bits, what] of IPV4_INTERNAL) {
    const size = 2 ** (32 - bits);
    const start = ipv4ToInt(base) as number;
    if (n >= start && n < start + size) return what;
  }
  return undefined;
}

/** The eight 16-bit groups of an IPv6 literal (without brackets), or undefined. */
function ipv6Groups(s: string): number[] | undefined {
  let text = s.toLowerCase().replace(/%.*$/, '');
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const n = ipv4ToInt(v4[1] as string);
    if (n === undefined) return undefined;
    text = `${text.slice(0, -(v4[1] as string).length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string) => (h ? h.split(':') : []);
  const head = parse(halves[0] as string);
  const tail = halves.length === 2 ? parse(halves[1] as string) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (all.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return all.map((g) => Number.parseInt(g, 16));
}

function classifyIpv6(g: number[]): string | undefined {
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, h6 = 0, h7 = 0] = g;
  const v4 = (hi: number, lo: number) => classifyIpv4(hi * 65536 + lo);
  if (g.every((x) => x === 0)) return 'unspecified';
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0) {
    if (f === 0 && h6 === 0 && h7 === 1) return 'loopback';
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 address decides
    if (f === 0xffff || f === 0) return v4(h6, h7) ?? undefined;
  }
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return v4(h6, h7); // NAT64
  if (a === 0x2002) return v4(b, c); // 6to4
  if ((a & 0xfe00) === 0xfc00) return 'unique local';
  if ((a & 0xffc0) === 0xfe80) return 'link-local';
  if ((a & 0xffc0) === 0xfec0) return 'site-local';
  if ((a & 0xff00) === 0xff00) return 'multicast';
  return undefined;
}

/**
 * The host as a URL parser sees it: lowercase, IPv4 in dotted decimal whatever its spelling
 * (`2852039166`, `0xa9.0376.43518`, `127.1`), IPv6 compressed in brackets. Undefined: not a host.
 */
export function canonicalHost(host: string): string | undefined {
  if (!host || /[\s/\\?#@]/.test(host)) return undefined;
  try {
    return new URL(`http://${host}/`).hostname.replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/** Why a canonical host is internal (loopback, private, link-local, metadata...), or undefined. */
export function internalHost(host: string): string | undefined {
  if (host.startsWith('[')) {
    const groups = ipv6Groups(host.slice(1, -1));
    return groups ? classifyIpv6(groups) : 'not an address';
  }
  const n = ipv4ToInt(host);
  if (n !== undefined) return classifyIpv4(n);
  if (INTERNAL_NAMES.includes(host) || host.endsWith('.localhost'))
    return 'this machine or a metadata service';
  return undefined;
}

const invalid = (field: string, message: string, detail: string) =>
  new ValidationError(message, [{ field, message: detail }]);

function checkHost(rawHost: string, policy: RepoPolicy, field: string, plainHttp: boolean): void {
  if (rawHost.startsWith('-')) throw invalid(field, 'A repository host must not begin with "-".', 'bad host');
  const host = canonicalHost(rawHost);
  if (!host) throw invalid(field, `"${rawHost.slice(0, 100)}" is not a host name.`, 'bad host');
  const allowed = policy.allowedHosts.some((h) => canonicalHost(h) === host);
  if (allowed) return;
  const why = internalHost(host);
  if (why) {
    throw invalid(
      field,
      `The repository host ${host} is ${why}; such hosts are accepted only where configured (AUTODEV_ALLOWED_REPO_HOSTS).`,
      'internal host not allowed',
    );
  }
  if (plainHttp) {
    throw invalid(
      field,
      `Plain http is accepted only for configured hosts (AUTODEV_ALLOWED_REPO_HOSTS); use https for ${host}.`,
      'http not allowed for this host',
    );
  }
}

function checkLocalPath(path: string, tenant: string, policy: RepoPolicy, field: string): void {
  const roots = [...(policy.localRoots[tenant] ?? []), ...(policy.localRoots['*'] ?? [])];
  if (roots.length === 0) {
    throw invalid(
      field,
      'Local repository paths are not accepted for this tenant; use an https or ssh URL (the local platform accepts paths under AUTODEV_LOCAL_REPO_ROOTS).',
      'local paths are not accepted here',
    );
  }
  const normal = posix.normalize(path);
  const under = (p: string, resolve: (r: string) => string) =>
    roots.some((r) => {
      const root = posix.normalize(resolve(r)).replace(/\/+$/, '');
      return p === root || p.startsWith(`${root}/`);
    });
  const resolve = policy.resolveLocalPath;
  // as written, and once more as the file system will read it: a link may point outside the root
  const inside = under(normal, (r) => r) && (!resolve || under(posix.normalize(resolve(normal)), resolve));
  if (!inside) {
    throw invalid(
      field,
      `The local path ${normal.slice(0, 200)} is outside the directories this tenant may use (${roots.join(', ')}).`,
      'local path outside the allowed directories',
    );
  }
}

const SCP_LIKE = /^(?:([^@/:\s]+)@)?([^@/:\s[\]]+|\[[0-9a-fA-F:.]+\]):(?!\/\/)(.*)$/;

/**
 * Checks the `repo` of a task (or a schedule's task) against the policy: a git URL (https, ssh,
 * `user@host:path`, plain http for configured hosts) whose host is public or configured, or a local
 * path or `file://` URL under the tenant's configured directories. Throws ValidationError (400).
 */
export function checkRepo(repo: string, tenant: string, policy: RepoPolicy, field = 'repo'): void {
  if (repo.startsWith('-')) throw invalid(field, 'A repository must not begin with "-".', 'begins with "-"');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x20\x7f]/.test(repo)) {
    throw invalid(
      field,
      `"${JSON.stringify(repo.slice(0, 200)).slice(1, -1)}" is not a git URL: it holds spaces or control characters.`,
      'bad characters',
    );
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(repo))
    throw invalid(field, 'Remote helpers (`<transport>::<address>`) are not accepted.', 'remote helper');
  if (repo.startsWith('/')) {
    checkLocalPath(repo, tenant, policy, field);
    return;
  }
  const scheme = repo.match(/^([a-z][a-z0-9+.-]*):\/\//i)?.[1]?.toLowerCase();
  if (scheme === 'https' || scheme === 'http' || scheme === 'ssh' || scheme === 'file') {
    let url: URL;
    try {
      url = new URL(repo);
    } catch {
      throw invalid(field, `"${repo.slice(0, 200)}" is not a valid URL.`, 'not a git URL');
    }
    if (scheme === 'file') {
      if (url.host && url.hostname !== 'localhost')
        throw invalid(field, 'A file:// URL names no host.', 'file URL with a host');
      let path: string;
      try {
        path = decodeURIComponent(url.pathname);
      } catch {
        throw invalid(field, 'The file:// URL has a malformed escape.', 'bad file URL');
      }
      checkLocalPath(path, tenant, policy, field);
      return;
    }
    // ssh:// is not a "special" scheme to the URL parser: its host is taken as written
    const host = url.hostname;
    if (!host || !url.pathname || url.pathname === '/')
      throw invalid(field, 'The URL names no repository.', 'no path');
    if (url.username.startsWith('-'))
      throw invalid(field, 'A user name must not begin with "-".', 'bad user');
    checkHost(host, policy, field, scheme === 'http');
    return;
  }
  const scp = scheme ? null : repo.match(SCP_LIKE);
  if (scp?.[2] && scp[3]) {
    if (scp[1]?.startsWith('-')) throw invalid(field, 'A user name must not begin with "-".', 'bad user');
    checkHost(scp[2], policy, field, false);
    return;
  }
  throw invalid(
    field,
    `"${repo.slice(0, 200)}" is not a git URL (https://…, ssh://… or git@host:path).`,
    'not a git URL',
  );
}
