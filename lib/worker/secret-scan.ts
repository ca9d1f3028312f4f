import { git, inTree, type TrustedWorktree } from './git.js';
import type { KnownSecrets } from './known-secrets.js';

export interface SecretFinding {
  /** Path of the file in the new version. */
  file: string;
  /** Line number in the new version of the file. */
  line: number;
  /** Which rule matched: `aws_access_key_id`, `github_token`, …, `high_entropy`. */
  rule: string;
  /** The match with all but its first characters hidden, for logs and messages. */
  redacted: string;
}

interface Rule {
  id: string;
  pattern: RegExp;
}

/** Known credential formats. Patterns are global: every match on a line is reported. */
export const SECRET_RULES: readonly Rule[] = [
  { id: 'aws_access_key_id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g },
  { id: 'github_token', pattern: /\bgh[pousr]_[A-Za-z0-9]{36,255}\b/g },
  { id: 'github_token', pattern: /\bgithub_pat_[A-Za-z0-9_]{22,255}\b/g },
  { id: 'gitlab_token', pattern: /\bglpat-[A-Za-z0-9_-]{20,}\b/g },
  { id: 'slack_token', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  { id: 'slack_webhook', pattern: /https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/_-]{20,}/g },
  { id: 'private_key', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/g },
  { id: 'anthropic_api_key', pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { id: 'openai_api_key', pattern: /\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g },
  { id: 'google_api_key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { id: 'stripe_secret_key', pattern: /\b[rs]k_live_[0-9A-Za-z]{20,}\b/g },
];

/** Marks a line as reviewed: `… // autodev:allow-secret`. */
export const ALLOW_MARKER = 'autodev:allow-secret';

/** Files whose content is hashes and checksums by nature. */
const CHECKSUM_FILES =
  /(^|\/)(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|bun\.lock|go\.sum|Cargo\.lock|poetry\.lock|Pipfile\.lock|uv\.lock|composer\.lock|Gemfile\.lock|flake\.lock|[^/]*\.(?:sum|lock|min\.js|map|svg))$/;

export interface ScanOptions {
  /** Bits per character from which a token counts as random. Default 4.0. */
  entropyThreshold?: number;
  /** Shortest token that is checked for entropy. Default 24. */
  minTokenLength?: number;
  /**
   * The platform's own secrets: a change holding one, in any form (rule `known_secret`), is refused
   * whatever the file and whatever marker the line carries. Looked for across a file's added lines
   * joined, so a value wrapped over lines (base64 at 76 columns) is found too.
   */
  known?: KnownSecrets;
}

/** Shannon entropy of `s` in bits per character. */
export function shannonEntropy(s: string): number {
  if (!s) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * Finds credentials in the lines a unified diff adds (`git diff` output, any context size): known
 * formats first, then random-looking tokens. Removed and context lines are not looked at.
 */
export function scanDiff(diff: string, opts: ScanOptions = {}): SecretFinding[] {
  const findings: SecretFinding[] = [];
  let file: string | undefined;
  let line = 0;
  let added: { line: number; text: string }[] = [];
  const endFile = () => {
    if (file && opts.known && !opts.known.empty && added.length > 0)
      findings.push(...findKnown(file, added, opts.known));
    added = [];
  };
  for (const raw of diff.split('\n')) {
    if (raw.startsWith('+++ ')) {
      endFile();
      const target = raw.slice(4).trim();
      file = target === '/dev/null' ? undefined : unquote(target).replace(/^b\//, '');
      continue;
    }
    if (raw.startsWith('--- ') || raw.startsWith('diff --git ')) continue;
    const hunk = raw.match(/^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/);
    if (hunk) {
      line = Number(hunk[1]);
      continue;
    }
    if (!file) continue;
    if (raw.startsWith('+')) {
      findings.push(...scanLine(file, line, raw.slice(1), opts));
      added.push({ line, text: raw.slice(1) });
      line++;
    } else if (raw.startsWith(' ')) line++;
    // '-' lines and '\ No newline at end of file' do not move the new file's line number
  }
  endFile();
  return findings;
}

/** The platform's own secrets in a file's added lines, each found once, named but never shown. */
function findKnown(
  file: string,
  added: readonly { line: number; text: string }[],
  known: KnownSecrets,
): SecretFinding[] {
  const starts: number[] = [];
  let joined = '';
  for (const a of added) {
    starts.push(joined.length);
    joined += a.text.trim();
  }
  const found: SecretFinding[] = [];
  for (let from = 0; from < joined.length; ) {
    const hit = known.find(joined.slice(from));
    if (!hit) break;
    const at = from + hit.index;
    let i = starts.length - 1;
    while (i > 0 && (starts[i] as number) > at) i--;
    found.push({
      file,
      line: added[i]?.line ?? 0,
      rule: 'known_secret',
      redacted: `the value of ${hit.name}`,
    });
    from = at + hit.length;
  }
  return found;
}

/** Finds credentials in one line of a file. */
export function scanLine(file: string, line: number, text: string, opts: ScanOptions = {}): SecretFinding[] {
  if (text.includes(ALLOW_MARKER)) return [];
  const found: SecretFinding[] = [];
  const covered: [number, number][] = [];
  for (const rule of SECRET_RULES) {
    for (const m of text.matchAll(rule.pattern)) {
      const start = m.index;
      if (isPlaceholder(m[0]) || covered.some(([a, b]) => start < b && start + m[0].length > a)) continue;
      covered.push([start, start + m[0].length]);
      found.push({ file, line, rule: rule.id, redacted: redact(m[0]) });
    }
  }
  if (CHECKSUM_FILES.test(file)) return found;
  const minLength = opts.minTokenLength ?? 24;
  const threshold = opts.entropyThreshold ?? 4.0;
  // absolute file paths (temporary or build folders: /tmp/build-Xk2q9Z/out) are not keys, however
  // random their parts look; known formats above are still found inside them
  const paths: [number, number][] = [...text.matchAll(ABSOLUTE_PATH)].map((m) => {
    const start = m.index + (m[1]?.length ?? 0);
    return [start, m.index + m[0].length];
  });
  const skip = [...covered, ...paths];
  for (const m of text.matchAll(/[A-Za-z0-9+/=_-]+/g)) {
    const token = m[0].replace(/=+$/, '');
    const start = m.index;
    if (token.length < minLength || skip.some(([a, b]) => start < b && start + token.length > a)) continue;
    if (!looksRandom(token, text.slice(Math.max(0, start - 8), start))) continue;
    if (shannonEntropy(token) < threshold) continue;
    // one random token is enough to look at the line: the others on it add nothing
    found.push({ file, line, rule: 'high_entropy', redacted: redact(token) });
    break;
  }
  return found;
}

/** An absolute file path of two or more parts, after a space, `=`, `:`, a quote or a bracket (not a URL's `//`). */
const ABSOLUTE_PATH = /(^|[\s='"([,:])\/[\w.-]+(?:\/[\w.-]+)+/g;

/** Whether a long token has the make-up of a key rather than of a word, a path or a hash. */
function looksRandom(token: string, before: string): boolean {
  // hex: commit ids, checksums, UUIDs without dashes
  if (/^[0-9a-fA-F]+$/.test(token)) return false;
  // Subresource Integrity and similar digests, and inline data (images, fonts)
  if (/^sha(?:1|224|256|384|512)-/i.test(token) || /sha(?:1|224|256|384|512)-$/i.test(before)) return false;
  if (/base64,$/.test(before)) return false;
  if (isPlaceholder(token)) return false;
  // identifiers and paths: words joined by separators, or one casing only
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/].filter((r) => r.test(token)).length;
  if (classes < 3) return false;
  // snake_case, kebab-case and path-like names with long parts are words, not keys
  const parts = token.split(/[/_-]/).filter(Boolean);
  if (parts.length > 1 && parts.every((p) => /^[A-Za-z][a-z]+\d*$|^[A-Z]+\d*$|^\d+$/.test(p))) return false;
  // long runs of lower-case letters are words (camelCase identifiers)
  const lowerRuns = token.match(/[a-z]{5,}/g)?.join('').length ?? 0;
  return lowerRuns < token.length * 0.5;
}

function isPlaceholder(s: string): boolean {
  return /EXAMPLE|example|placeholder|PLACEHOLDER|x{8,}|X{8,}|0{8,}|\*{4,}|\.\.\./.test(s);
}

function redact(secret: string): string {
  return `${secret.slice(0, Math.min(6, Math.floor(secret.length / 4)))}…(${secret.length} chars)`;
}

function unquote(path: string): string {
  // git quotes unusual paths in C style
  if (!path.startsWith('"')) return path;
  try {
    return JSON.parse(path) as string;
  } catch {
    return path.slice(1, -1);
  }
}

/**
 * The diff to scan before a push: everything the task's commits add on top of `baseCommit`, with no
 * context lines and no renames (a renamed file's lines count as added).
 */
export function diffForScan(where: string | TrustedWorktree, baseCommit: string): Promise<string> {
  return git(['diff', ...SCAN_DIFF_ARGS, `${baseCommit}..HEAD`], inTree(where));
}

/** How the scan's diffs are taken: no context, no renames, nothing the repository configures run. */
export const SCAN_DIFF_ARGS: readonly string[] = [
  '--no-color',
  '--no-ext-diff',
  '--no-textconv',
  '--no-renames',
  '--unified=0',
];

/** Scans what the task's commits add on top of `baseCommit`; the push must not happen when this finds anything. */
export async function scanBeforePush(
  workdir: string | TrustedWorktree,
  baseCommit: string,
  opts: ScanOptions = {},
): Promise<SecretFinding[]> {
  return scanDiff(await diffForScan(workdir, baseCommit), opts);
}

/** A message for the task's log and error: where the findings are, never what they are. */
export function describeFindings(findings: readonly SecretFinding[]): string {
  const shown = findings
    .slice(0, 10)
    .map((f) => `${f.file}:${f.line} (${f.rule}, ${f.redacted})`)
    .join(', ');
  const more = findings.length > 10 ? ` and ${findings.length - 10} more` : '';
  if (findings.some((f) => f.rule === 'known_secret'))
    return `The change adds a secret this platform holds: ${shown}${more}. The push was blocked; the value can never be pushed, whatever marker the line carries.`;
  return `The change adds what looks like ${findings.length === 1 ? 'a secret' : 'secrets'}: ${shown}${more}. The push was blocked; remove them, or mark a reviewed line with "${ALLOW_MARKER}".`;
}
