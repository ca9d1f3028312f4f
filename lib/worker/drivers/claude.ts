import type { ProviderErrorClass } from '../../core/errors.js';
import type {
  CommandLine,
  DriverInput,
  ParsedOutput,
  ProcessOutput,
  ProviderDriver,
} from '../../core/ports.js';
import { gatewayEnv } from './gateway-env.js';
import { classifyText, jsonLines, num, obj, str } from './json-lines.js';

const DEFAULT_MAX_TURNS = 50;

/** Claude Code's switches for everything it sends besides model calls. */
const QUIET = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_BUG_COMMAND: '1',
};

/**
 * Claude Code: `claude -p --output-format json --permission-mode bypassPermissions ... -- PROMPT`
 * (commander: after `--` a prompt that begins with "-" is the prompt, not an option).
 * Prints one JSON result object; on API failures `is_error` is true (subtype may still be
 * `success`) with `api_error_status`.
 */
export class ClaudeDriver implements ProviderDriver {
  readonly name = 'claude';
  readonly bin = 'claude';
  readonly credentialEnv = [
    'ANTHROPIC_API_KEY',
    'CLAUDE_CODE_OAUTH_TOKEN',
    'ANTHROPIC_AUTH_TOKEN',
    'CLAUDE_CODE_USE_BEDROCK',
  ];

  command(input: DriverInput): CommandLine {
    const args = [
      '-p',
      '--output-format',
      'json',
      '--permission-mode',
      'bypassPermissions',
      '--max-turns',
      String(input.maxTurns ?? DEFAULT_MAX_TURNS),
    ];
    if (input.model) args.push('--model', input.model);
    // through the gateway the budget is the gateway's (priced on the wire, ending `budget_exceeded`)
    if (input.maxBudgetUsd !== undefined && !input.gateway)
      args.push('--max-budget-usd', String(input.maxBudgetUsd));
    if (input.systemPrompt) args.push('--append-system-prompt', input.systemPrompt);
    args.push('--', input.prompt);
    return {
      args,
      env: {
        CLAUDE_CONFIG_DIR: `${input.homeDir}/.claude`,
        // nothing but model calls leaves the CLI: no update checks, telemetry or error reports
        ...QUIET,
        // bypassPermissions refuses to start as root unless told it runs in a sandbox; the workspace is one.
        IS_SANDBOX: '1',
        ...gatewayEnv(this.credentialEnv, input.gateway, (g) => ({
          ANTHROPIC_BASE_URL: g.baseUrl,
          ANTHROPIC_API_KEY: g.credential,
        })),
      },
    };
  }

  private result(output: ProcessOutput): Record<string, unknown> | undefined {
    return jsonLines(output.stdout)
      .reverse()
      .find((o) => o.type === 'result');
  }

  parse(output: ProcessOutput): ParsedOutput {
    const r = this.result(output);
    if (!r) return { reportedError: output.exitCode !== 0, errorMessage: lastLine(output.stderr) };
    const usage = obj(r.usage);
    const cached = num(usage.cache_read_input_tokens);
    const isError = r.is_error === true || (str(r.subtype) ?? 'success') !== 'success';
    return {
      text: str(r.result),
      sessionId: str(r.session_id),
      usage: {
        inputTokens: num(usage.input_tokens) + num(usage.cache_creation_input_tokens) + cached,
        cachedInputTokens: cached,
        outputTokens: num(usage.output_tokens),
        costUsd: num(r.total_cost_usd),
      },
      reportedError: isError,
      errorMessage: isError ? describe(r) : undefined,
    };
  }

  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined {
    if (output.timedOut) return 'timeout';
    const r = this.result(output);
    if (r) {
      if (!parsed.reportedError && output.exitCode === 0) return undefined;
      const status = num(r.api_error_status);
      if (status === 429) return 'rate_limit';
      if (status === 401 || status === 403) return 'auth';
      if (status === 413) return 'context_overflow';
      if (status === 529 || status >= 500) return 'overloaded';
      const subtype = str(r.subtype) ?? '';
      if (subtype === 'error_max_turns' || subtype === 'error_max_budget_usd') return 'budget';
      return classifyText(str(r.result) ?? '') ?? 'crash';
    }
    if (output.exitCode === 0 && !output.signal) return 'crash'; // exit 0 but no result: not a run we can trust
    return classifyText(output.stderr) ?? 'crash';
  }
}

function describe(r: Record<string, unknown>): string {
  const parts: string[] = [];
  if (r.api_error_status) parts.push(`API status ${r.api_error_status}`);
  const subtype = str(r.subtype);
  if (subtype && subtype !== 'success') parts.push(subtype);
  const text = str(r.result);
  if (text) parts.push(text.slice(0, 500));
  return parts.join(': ') || 'the CLI reported an error';
}

function lastLine(text: string): string | undefined {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]?.slice(0, 500) || undefined;
}
