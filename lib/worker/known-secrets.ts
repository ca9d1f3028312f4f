/**
 * The exact values of the secrets the platform holds (provider keys, forge and git tokens, webhook
 * secrets), in every form a commit or a log line would carry them: as they are, base64 (standard and
 * URL-safe, at each of the three byte offsets, so a value inside a longer encoded text is found
 * too), hexadecimal, URL-encoded, JSON-escaped and reversed. The secret scan refuses a change that
 * holds one; logs and error messages have them replaced by a marker before they are stored.
 */

/** Values shorter than this are not looked for (too likely to occur by chance). */
const MIN_VALUE_LENGTH = 8;
/** Shortest base64 run of a value that is looked for. */
const MIN_ENCODED_LENGTH = 10;

/** Names of variables that hold secrets, by convention; not those that name where one is. */
export const SECRET_NAME = /(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH)(_|$)/i;
const NOT_SECRET = /(_SOCK|_PATH|_FILE|_DIR|_ARN|_URL|_URI|_BIN|_MODEL|_NAME|_ID)$/i;

interface Form {
  name: string;
  text: string;
}

export class KnownSecrets {
  /** Every form of every value, longest first (a longer form is replaced before a part of it). */
  private readonly forms: Form[];

  constructor(secrets: Readonly<Record<string, string | undefined>>) {
    const forms = new Map<string, string>();
    for (const [name, value] of Object.entries(secrets)) {
      if (!value || value.trim().length < MIN_VALUE_LENGTH) continue;
      for (const text of formsOf(value)) if (!forms.has(text)) forms.set(text, name);
    }
    this.forms = [...forms]
      .map(([text, name]) => ({ name, text }))
      .sort((a, b) => b.text.length - a.text.length);
  }

  /** None known: nothing to look for. */
  get empty(): boolean {
    return this.forms.length === 0;
  }

  /** The first known secret in `text`: its name and where it starts. */
  find(text: string): { name: string; index: number; length: number } | undefined {
    let best: { name: string; index: number; length: number } | undefined;
    for (const f of this.forms) {
      const index = text.indexOf(f.text);
      if (index >= 0 && (!best || index < best.index)) best = { name: f.name, index, length: f.text.length };
    }
    return best;
  }

  /** `text` with every known secret, in any of its forms, replaced by `[redacted NAME]`. */
  redact(text: string): string {
    if (this.forms.length === 0 || !text) return text;
    let out = text;
    for (const f of this.forms)
      if (out.includes(f.text)) out = out.split(f.text).join(`[redacted ${f.name}]`);
    return out;
  }
}

/** The forms a value takes in files and logs. */
export function formsOf(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set<string>([value, [...value].reverse().join('')]);
  forms.add(bytes.toString('hex'));
  forms.add(bytes.toString('hex').toUpperCase());
  forms.add(encodeURIComponent(value));
  forms.add(JSON.stringify(value).slice(1, -1));
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // the characters that depend on this value's bytes only: not on what comes before or after
    const start = Math.ceil(offset / 3) * 4;
    const end = Math.floor((offset + bytes.length) / 3) * 4;
    const core = encoded.slice(start, end);
    if (core.length < MIN_ENCODED_LENGTH) continue;
    forms.add(core);
    forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...forms].filter((f) => f.length >= MIN_VALUE_LENGTH);
}

/** The secrets among `env`: the variables whose names say they hold one (`*_KEY`, `*_TOKEN`, …). */
export function secretsIn(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v && SECRET_NAME.test(k) && !NOT_SECRET.test(k)) out[k] = v;
  return out;
}
