/**
 * When a provider's rate limit opens again, read from the headers of a 429/529/503 answer. Pure.
 * - `retry-after`: seconds, or an HTTP date (RFC 9110); also `retry-after-ms` (OpenAI, Anthropic SDKs).
 * - `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`: RFC 3339 times.
 * - `x-ratelimit-reset-{requests,tokens}` (OpenAI): durations such as `6m0s`, `1s`, `20ms`, `1h2m3.5s`.
 * A limit whose matching `-remaining` header says 0 is the one that closed; when none says so,
 * the latest reset is taken.
 */

export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 1e-6,
};

/** A Go-style duration (`6m0s`, `1.5s`, `20ms`, `1h2m`) in milliseconds; undefined when malformed. */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (!s) return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000; // bare number: seconds
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
    matched = re.lastIndex;
  }
  return matched === s.length ? Math.round(total) : undefined;
}

/** `retry-after` as a time (ms since epoch): delay seconds or an HTTP date. */
export function parseRetryAfter(value: string, now: number): number | undefined {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return now + Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : at;
}

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

interface Candidate {
  at: number;
  exhausted: boolean;
}

function anthropicResets(headers: HeaderBag): Candidate[] {
  const out: Candidate[] = [];
  for (const kind of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
    const reset = header(headers, `anthropic-ratelimit-${kind}-reset`);
    if (!reset) continue;
    const at = Date.parse(reset);
    if (Number.isNaN(at)) continue;
    out.push({ at, exhausted: header(headers, `anthropic-ratelimit-${kind}-remaining`)?.trim() === '0' });
  }
  return out;
}

function openaiResets(headers: HeaderBag, now: number): Candidate[] {
  const out: Candidate[] = [];
  for (const kind of ['requests', 'tokens']) {
    const reset = header(headers, `x-ratelimit-reset-${kind}`);
    if (!reset) continue;
    const ms = parseDurationMs(reset);
    if (ms === undefined) continue;
    out.push({ at: now + ms, exhausted: header(headers, `x-ratelimit-remaining-${kind}`)?.trim() === '0' });
  }
  return out;
}

/**
 * The time (ms since epoch) the limit behind this answer resets, or undefined when the headers do
 * not say. `retry-after-ms` and `retry-after` win: they are the provider's own advice.
 */
export function rateLimitResetAt(headers: HeaderBag, now: number): number | undefined {
  const retryMs = header(headers, 'retry-after-ms');
  if (retryMs && /^\d+(\.\d+)?$/.test(retryMs.trim())) return now + Math.round(Number(retryMs));
  const retryAfter = header(headers, 'retry-after');
  const fromRetry = retryAfter ? parseRetryAfter(retryAfter, now) : undefined;
  if (fromRetry !== undefined) return fromRetry;
  const all = [...anthropicResets(headers), ...openaiResets(headers, now)];
  const closed = all.filter((c) => c.exhausted);
  const pick = closed.length > 0 ? closed : all;
  if (pick.length === 0) return undefined;
  return Math.max(...pick.map((c) => c.at));
}
