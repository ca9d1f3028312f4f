import type { ProviderErrorClass } from '../../core/errors.js';

/** Parses every line of `text` that is a JSON object; skips banners, warnings and partial lines. */
export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) continue;
    try {
      const value: unknown = JSON.parse(trimmed);
      if (value && typeof value === 'object' && !Array.isArray(value))
        out.push(value as Record<string, unknown>);
    } catch {
      // not JSON: a banner or a partial line
    }
  }
  return out;
}

/**
 * Every top-level JSON object in `text`, whether printed on one line or pretty-printed over many
 * (Gemini prints `JSON.stringify(x, null, 2)`), with any other text around it skipped. An object
 * must start at the beginning of a line.
 */
export function jsonBlocks(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('{', i);
    if (start < 0) break;
    const lineStart = text.lastIndexOf('\n', start - 1) + 1;
    if (text.slice(lineStart, start).trim() !== '') {
      i = start + 1;
      continue;
    }
    const end = matchingBrace(text, start);
    if (end < 0) break;
    try {
      const value: unknown = JSON.parse(text.slice(start, end + 1));
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        out.push(value as Record<string, unknown>);
        i = end + 1;
        continue;
      }
    } catch {
      // braces balanced but not JSON: keep looking after this brace
    }
    i = start + 1;
  }
  return out;
}

/** Index of the `}` closing the `{` at `start`, minding strings; -1 when the text ends first. */
function matchingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The last non-empty line of `text` (at most 500 characters), for error messages. */
export function lastLine(text: string): string | undefined {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim());
  return lines[lines.length - 1]?.trim().slice(0, 500) || undefined;
}

/** Maps an HTTP status from a provider API to an error class. */
export function classifyStatus(status: number): ProviderErrorClass | undefined {
  if (status === 429) return 'rate_limit';
  if (status === 401 || status === 403) return 'auth';
  if (status === 413) return 'context_overflow';
  if (status === 529 || status >= 500) return 'overloaded';
  return undefined;
}

/** Shared text signals of provider failures, checked after each CLI's own structured signals. */
export function classifyText(text: string) {
  if (
    /invalid api key|authentication[_ ]error|authentication required|unauthori[sz]ed|api key not valid|api key is invalid|please run \/login|invalid x-api-key|not able to authenticate|\b401\b/i.test(
      text,
    )
  )
    return 'auth' as const;
  if (
    /prompt is too long|context window|context_length_exceeded|maximum context length|too many tokens|exceeds the maximum number of tokens/i.test(
      text,
    )
  )
    return 'context_overflow' as const;
  if (/rate[ _-]?limit|too many requests|\b429\b|usage limit|quota/i.test(text)) return 'rate_limit' as const;
  if (/overloaded|\b529\b|\b503\b|service unavailable/i.test(text)) return 'overloaded' as const;
  return undefined;
}
