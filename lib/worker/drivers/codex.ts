import { mkdirSync } from 'node:fs';
import type { ProviderErrorClass } from '../../core/errors.js';
import type {
  CommandLine,
  DriverInput,
  ParsedOutput,
  ProcessOutput,
  ProviderDriver,
} from '../../core/ports.js';
import { gatewayEnv } from './gateway-env.js';
import { classifyStatus, classifyText, jsonLines, lastLine, num, obj, str } from './json-lines.js';
import { costOf, FREE, priceFor } from './pricing.js';

export interface CodexDriverOptions {
  /** Run against a local model server (`--oss`) instead of OpenAI: no API key, no cost. */
  oss?: boolean;
  /** With `oss`: which local server (`ollama`, `lmstudio`); its base URL can be moved with CODEX_OSS_BASE_URL. */
  localProvider?: string;
  /** The model used to price tokens when the run names none (Codex reports no cost). */
  defaultModel?: string;
}

/**
 * `-c` settings that switch off what Codex sends besides model calls: the update check, analytics,
 * feedback uploads, and the plugin marketplaces and apps it syncs at start (from github.com and
 * chatgpt.com, seen through a recording proxy with Codex 0.169).
 */
const QUIET = [
  'check_for_update_on_startup=false',
  'analytics.enabled=false',
  'feedback.enabled=false',
  'features.plugins=false',
  'features.remote_plugin=false',
  'features.plugin_sharing=false',
  'features.apps=false',
].flatMap((setting) => ['-c', setting]);

/** The model gateway as a Codex model provider (Responses over HTTP, key from CODEX_API_KEY). */
function gatewayProvider(baseUrl: string): string[] {
  const provider = `{name="AutoDev model gateway",base_url=${JSON.stringify(baseUrl)},env_key="CODEX_API_KEY",wire_api="responses",supports_websockets=false}`;
  return ['-c', `model_providers.autodev=${provider}`, '-c', 'model_provider="autodev"'];
}

/**
 * OpenAI Codex: `codex exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox
 * [-m MODEL] -C DIR -` with the prompt on stdin. Prints JSON events; usage comes in
 * `turn.completed`, errors in `turn.failed` / `error`. It has no turn or budget flag.
 */
export class CodexDriver implements ProviderDriver {
  readonly name = 'codex';
  readonly bin = 'codex';
  readonly credentialEnv: readonly string[];

  constructor(private readonly options: CodexDriverOptions = {}) {
    this.credentialEnv = options.oss ? [] : ['CODEX_API_KEY', 'OPENAI_API_KEY'];
  }

  command(input: DriverInput): CommandLine {
    // no update check, no analytics, no feedback uploads: nothing but model calls leaves the CLI
    const args = ['exec', ...QUIET];
    // Codex 0.169 ignores OPENAI_BASE_URL, and its built-in provider first tries a WebSocket: the
    // gateway is declared as a provider of its own, HTTP only, reading the session credential
    if (input.gateway) args.push(...gatewayProvider(input.gateway.baseUrl));
    args.push('--json', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox');
    if (this.options.oss) {
      args.push('--oss');
      if (this.options.localProvider) args.push('--local-provider', this.options.localProvider);
    }
    if (input.model) args.push('-m', input.model);
    args.push('-C', input.workdir, '-');
    const codexHome = `${input.homeDir}/.codex`;
    // Codex refuses to start when CODEX_HOME names a directory that does not exist.
    mkdirSync(codexHome, { recursive: true });
    return {
      args,
      env: {
        CODEX_HOME: codexHome,
        ...gatewayEnv(this.credentialEnv, input.gateway, (g) => ({ CODEX_API_KEY: g.credential })),
      },
      stdin: input.systemPrompt ? `${input.systemPrompt}\n\n${input.prompt}` : input.prompt,
    };
  }

  /** `input` (the run's model) prices the tokens; without it the driver's default model does. */
  parse(output: ProcessOutput, input?: Pick<DriverInput, 'model'>): ParsedOutput {
    const events = jsonLines(output.stdout);
    let sessionId: string | undefined;
    let text: string | undefined;
    let inputTokens = 0;
    let cachedInputTokens = 0;
    let outputTokens = 0;
    const errors: string[] = [];
    for (const e of events) {
      const item = obj(e.item);
      switch (e.type) {
        case 'thread.started':
          sessionId = str(e.thread_id) ?? sessionId;
          break;
        case 'item.completed':
          if (item.type === 'agent_message') text = str(item.text) ?? text;
          else if (item.type === 'error' && str(item.message)) errors.push(str(item.message) as string);
          break;
        case 'turn.completed': {
          const u = obj(e.usage);
          inputTokens += num(u.input_tokens);
          cachedInputTokens += num(u.cached_input_tokens);
          outputTokens += num(u.output_tokens);
          break;
        }
        case 'turn.failed':
          errors.push(str(obj(e.error).message) ?? 'turn failed');
          break;
        case 'error':
          errors.push(str(e.message) ?? 'error');
          break;
      }
    }
    const price = this.options.oss
      ? FREE
      : priceFor(input?.model ?? this.options.defaultModel ?? 'gpt-5-codex');
    const usage = { inputTokens, cachedInputTokens, outputTokens };
    const completed = events.some((e) => e.type === 'turn.completed');
    const failed = !completed || events.some((e) => e.type === 'turn.failed') || output.exitCode !== 0;
    return {
      text,
      sessionId,
      usage: { ...usage, costUsd: costOf(usage, price) },
      reportedError: failed,
      // `error` events also carry retries and warnings: they matter only when the turn did not complete
      errorMessage: failed
        ? (errors[errors.length - 1]?.slice(0, 500) ?? lastLine(output.stderr))
        : undefined,
    };
  }

  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined {
    if (output.timedOut) return 'timeout';
    const events = jsonLines(output.stdout);
    const completed = events.some((e) => e.type === 'turn.completed');
    const failed = events.some((e) => e.type === 'turn.failed');
    if (output.exitCode === 0 && completed && !failed) return undefined;
    if (output.signal) return 'crash';
    const message = parsed.errorMessage ?? '';
    const status = /last status:\s*(\d{3})|unexpected status (\d{3})/i.exec(message);
    const fromStatus = status ? classifyStatus(Number(status[1] ?? status[2])) : undefined;
    if (fromStatus) return fromStatus;
    if (/ran out of room in the model's context window/i.test(message)) return 'context_overflow';
    if (/hit your usage limit/i.test(message)) return 'rate_limit';
    // exit 0 without a completed turn: the sandbox or the setup failed silently and nothing ran
    return classifyText(message) ?? classifyText(output.stderr) ?? 'crash';
  }
}
