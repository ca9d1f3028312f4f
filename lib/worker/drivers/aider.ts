import type { ProviderErrorClass } from '../../core/errors.js';
import type {
  CommandLine,
  DriverInput,
  ParsedOutput,
  ProcessOutput,
  ProviderDriver,
} from '../../core/ports.js';
import type { Usage } from '../../core/schemas.js';
import { classifyText, lastLine } from './json-lines.js';

export interface AiderDriverOptions {
  /** An Ollama server for local models (OLLAMA_API_BASE); model names get the `ollama_chat/` prefix. */
  ollamaApiBase?: string;
}

/** Aider's report of one model call: `Tokens: 12k sent, 2.3k cache hit, 1.1k received. Cost: $0.05 message, $0.05 session.` */
const TOKENS_LINE = /^Tokens: (.+?)\.(?: Cost: \$([\d.]+) message, \$([\d.]+) session\.?)?\s*$/gm;

/**
 * What aider prints when a model call failed: it still exits 0, so these are the signal. Each
 * entry is a line aider (or litellm) prints, not words a reply might contain.
 */
const FAILURES: [RegExp, ProviderErrorClass][] = [
  [/has hit a token limit|exhausted context window|ContextWindowExceededError/, 'context_overflow'],
  [/litellm\.(AuthenticationError|PermissionDeniedError)|not able to authenticate you/, 'auth'],
  [/litellm\.RateLimitError|has rate limited you/, 'rate_limit'],
  [
    /litellm\.(InternalServerError|ServiceUnavailableError|APIConnectionError)|servers are down or overloaded/,
    'overloaded',
  ],
];

/**
 * Aider: `aider --message PROMPT --yes-always --no-auto-commits --no-stream --no-pretty
 * --analytics-disable --no-check-update --model M`, plus history files in the private home and no
 * .gitignore edit, so that the workspace holds only the agent's changes. Prints text only; usage
 * is read from its `Tokens: ... Cost: ...` lines. It exits 0 even when the API call failed.
 */
export class AiderDriver implements ProviderDriver {
  readonly name = 'aider';
  readonly bin = 'aider';
  readonly credentialEnv: readonly string[];

  constructor(private readonly options: AiderDriverOptions = {}) {
    this.credentialEnv = options.ollamaApiBase
      ? []
      : ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY', 'OPENROUTER_API_KEY', 'DEEPSEEK_API_KEY'];
  }

  command(input: DriverInput): CommandLine {
    const message = input.systemPrompt ? `${input.systemPrompt}\n\n${input.prompt}` : input.prompt;
    // argparse refuses a separate value that begins with "-": `--message=` keeps it the value
    const args = [
      `--message=${message}`,
      '--yes-always',
      '--no-auto-commits',
      '--no-stream',
      '--no-pretty',
      '--analytics-disable',
      '--no-check-update',
    ];
    let model = input.model;
    if (model && this.options.ollamaApiBase && !model.startsWith('ollama')) model = `ollama_chat/${model}`;
    if (model) args.push('--model', model);
    args.push(
      '--no-show-model-warnings',
      '--no-gitignore',
      '--chat-history-file',
      `${input.homeDir}/.aider.chat.history.md`,
      '--input-history-file',
      `${input.homeDir}/.aider.input.history`,
    );
    const env: Record<string, string> = { HOME: input.homeDir };
    if (this.options.ollamaApiBase) env.OLLAMA_API_BASE = this.options.ollamaApiBase;
    return { args, env };
  }

  parse(output: ProcessOutput): ParsedOutput {
    const r = reports(output.stdout);
    const failure = this.failure(output, r.lastEnd);
    const failed = failure !== undefined || r.lastEnd < 0 || output.exitCode !== 0;
    return {
      text: r.lastStart >= 0 ? reply(output.stdout.slice(0, r.lastStart)) : undefined,
      usage: r.usage,
      reportedError: failed,
      errorMessage: failed
        ? (failure?.line ?? lastLine(output.stderr) ?? lastLine(output.stdout))
        : undefined,
    };
  }

  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined {
    if (output.timedOut) return 'timeout';
    if (!parsed.reportedError) return undefined;
    if (output.signal) return 'crash';
    const failure = this.failure(output, reports(output.stdout).lastEnd);
    if (failure) return failure.errorClass;
    if (output.exitCode !== 0) return classifyText(output.stderr) ?? 'crash';
    return 'crash'; // exit 0 but no model call was reported
  }

  /** A failure aider reported after the last successful call (`from`: where that call's report ends). */
  private failure(
    output: ProcessOutput,
    from: number,
  ): { errorClass: ProviderErrorClass; line: string } | undefined {
    const tail = `${output.stdout.slice(Math.max(from, 0))}\n${output.stderr}`;
    for (const [pattern, errorClass] of FAILURES) {
      const m = pattern.exec(tail);
      if (m) {
        const lineStart = tail.lastIndexOf('\n', m.index) + 1;
        const lineEnd = tail.indexOf('\n', m.index);
        return { errorClass, line: tail.slice(lineStart, lineEnd < 0 ? undefined : lineEnd).slice(0, 500) };
      }
    }
    return undefined;
  }
}

/** The usage summed over aider's token reports, and where the last report starts and ends (-1: none). */
function reports(text: string): { usage: Usage; lastStart: number; lastEnd: number } {
  const usage = { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0 };
  let lastStart = -1;
  let lastEnd = -1;
  for (const m of text.matchAll(TOKENS_LINE)) {
    const counts = tokenCounts(m[1] ?? '');
    usage.inputTokens += counts.sent;
    usage.cachedInputTokens += counts.cacheHit;
    usage.outputTokens += counts.received;
    if (m[3] !== undefined) usage.costUsd = Number(m[3]); // the session total so far
    lastStart = m.index;
    lastEnd = m.index + m[0].length;
  }
  return { usage, lastStart, lastEnd };
}

/** `12k sent, 2.3k cache write, 1.1k cache hit, 310 received` → counts. */
function tokenCounts(report: string): { sent: number; cacheHit: number; received: number } {
  const counts = { sent: 0, cacheHit: 0, received: 0 };
  for (const item of report.split(',')) {
    const m = /^\s*([\d.]+)([kKmM]?)\s+(sent|cache hit|cache write|received)\s*$/.exec(item);
    if (!m) continue;
    const n = Math.round(Number(m[1]) * ({ k: 1e3, m: 1e6 }[(m[2] ?? '').toLowerCase()] ?? 1));
    if (m[3] === 'sent') counts.sent += n;
    else if (m[3] === 'cache hit') counts.cacheHit += n;
    else if (m[3] === 'received') counts.received += n;
  }
  return counts;
}

const BANNER =
  /^(Aider v|Main model:|Weak model:|Editor model:|Git repo:|Repo-map:|Model:|Added .+ to the chat|Warning:|https:\/\/aider\.chat)/;
const EDIT_BLOCK = /^[^\n]*\n(?:```[^\n]*\n)?<<<<<<< SEARCH\n[\s\S]*?\n>>>>>>> REPLACE\n?(?:```\n?)?/gm;

/** The model's reply: what aider printed before its last token report, without banner and edit blocks. */
function reply(text: string): string | undefined {
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length && (BANNER.test(lines[i] ?? '') || !lines[i]?.trim())) i++;
  const body = lines.slice(i).join('\n').replace(EDIT_BLOCK, '').trim();
  return body ? body.slice(-4000) : undefined;
}
