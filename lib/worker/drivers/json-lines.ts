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

export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** Shared text signals of provider failures, checked after each CLI's own structured signals. */
export function classifyText(text: string) {
  if (
    /invalid api key|authentication[_ ]error|unauthori[sz]ed|api key not valid|please run \/login|invalid x-api-key|\b401\b/i.test(
      text,
    )
  )
    return 'auth' as const;
  if (
    /prompt is too long|context window|context_length_exceeded|maximum context length|too many tokens/i.test(
      text,
    )
  )
    return 'context_overflow' as const;
  if (/rate[ _-]?limit|too many requests|\b429\b|usage limit|quota/i.test(text)) return 'rate_limit' as const;
  if (/overloaded|\b529\b|\b503\b|service unavailable/i.test(text)) return 'overloaded' as const;
  return undefined;
}
