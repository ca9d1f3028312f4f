import type { ProviderErrorClass } from '../../core/errors.js';
import type {
  CommandLine,
  DriverInput,
  ParsedOutput,
  ProcessOutput,
  ProviderDriver,
} from '../../core/ports.js';
import { classifyText, jsonBlocks, lastLine, num, obj, str } from './json-lines.js';
import { costOf, priceFor } from './pricing.js';

export interface CursorDriverOptions {
  /** The model used to price tokens when the run names none. */
  defaultModel?: string;
}

/**
 * Cursor CLI: `cursor-agent -p --force --trust --output-format json [--model M] --workspace DIR PROMPT`.
 * Prints one result object on success only (newer builds add `usage`, no cost); a failure prints
 * NO JSON: a message on stderr and a non-zero exit. Its files live in `~/.cursor` (HOME).
 */
export class CursorDriver implements ProviderDriver {
  readonly name = 'cursor';
  readonly bin = 'cursor-agent';
  readonly credentialEnv = ['CURSOR_API_KEY'];

  constructor(private readonly options: CursorDriverOptions = {}) {}

  command(input: DriverInput): CommandLine {
    const prompt = input.systemPrompt ? `${input.systemPrompt}\n\n${input.prompt}` : input.prompt;
    const args = ['-p', '--force', '--trust', '--output-format', 'json'];
    if (input.model) args.push('--model', input.model);
    // commander: after `--` a prompt that begins with "-" is the prompt, not an option
    args.push('--workspace', input.workdir, '--', prompt);
    return { args, env: { HOME: input.homeDir } };
  }

  private result(output: ProcessOutput): Record<string, unknown> | undefined {
    return jsonBlocks(output.stdout)
      .reverse()
      .find((o) => o.type === 'result');
  }

  /** `input` (the run's model) prices the tokens when Cursor reports usage. */
  parse(output: ProcessOutput, input?: Pick<DriverInput, 'model'>): ParsedOutput {
    const r = this.result(output);
    if (!r) return { reportedError: true, errorMessage: lastLine(output.stderr) ?? lastLine(output.stdout) };
    const u = obj(r.usage);
    const cacheRead = num(u.cacheReadTokens) + num(u.cache_read_input_tokens);
    const cacheWrite = num(u.cacheWriteTokens) + num(u.cache_creation_input_tokens);
    const usage = {
      inputTokens: num(u.inputTokens) + num(u.input_tokens) + cacheRead + cacheWrite,
      cachedInputTokens: cacheRead,
      outputTokens: num(u.outputTokens) + num(u.output_tokens),
    };
    const isError =
      r.is_error === true || (str(r.subtype) ?? 'success') !== 'success' || output.exitCode !== 0;
    return {
      text: str(r.result),
      sessionId: str(r.session_id),
      usage: { ...usage, costUsd: costOf(usage, priceFor(input?.model ?? this.options.defaultModel)) },
      reportedError: isError,
      errorMessage: isError ? (str(r.result)?.slice(0, 500) ?? lastLine(output.stderr)) : undefined,
    };
  }

  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined {
    if (output.timedOut) return 'timeout';
    if (!parsed.reportedError) return undefined;
    if (output.signal) return 'crash';
    // exit 0 without a result is not a run we can trust
    if (output.exitCode === 0 && !this.result(output)) return 'crash';
    return classifyText(parsed.errorMessage ?? '') ?? classifyText(output.stderr) ?? 'crash';
  }
}
