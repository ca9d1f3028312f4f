import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { ProviderErrorClass } from '../../core/errors.js';
import type {
  CommandLine,
  DriverInput,
  ParsedOutput,
  ProcessOutput,
  ProviderDriver,
} from '../../core/ports.js';
import { gatewayEnv } from './gateway-env.js';
import { classifyStatus, classifyText, jsonBlocks, lastLine, num, obj, str } from './json-lines.js';
import { costOf, priceFor } from './pricing.js';

/**
 * The warning Gemini CLI's JSON output carries when its own loop detection stopped the run (the same
 * tool call 5 times in a row, the same text 10 times, or its model's judgement after 30 turns); it
 * then exits 0 as if it had finished.
 */
const LOOP_WARNING = /^Loop detected/i;

/** Exit codes of Gemini CLI's fatal errors. */
const EXIT_AUTH = 41;
const EXIT_TURN_LIMIT = 53;

/**
 * Gemini CLI: `gemini -p PROMPT --output-format json --approval-mode=yolo --skip-trust [-m MODEL]`.
 * Success prints one (pretty-printed) JSON object on stdout with per-model token stats and no cost;
 * an error prints `{session_id, error:{type,message,code}}` on STDERR with stdout empty, and exits
 * with a fatal code (41 auth, 53 turn limit, ...) or with the HTTP status mod 256 (429 → 173).
 */
export class GeminiDriver implements ProviderDriver {
  readonly name = 'gemini';
  readonly bin = 'gemini';
  readonly credentialEnv = ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GENAI_USE_VERTEXAI'];

  command(input: DriverInput): CommandLine {
    const prompt = input.systemPrompt ? `${input.systemPrompt}\n\n${input.prompt}` : input.prompt;
    // yargs takes a separate value that begins with "-" for an option: `--prompt=` keeps it the value
    const args = [`--prompt=${prompt}`, '--output-format', 'json', '--approval-mode=yolo', '--skip-trust'];
    if (input.model) args.push('-m', input.model);
    // GEMINI_CLI_HOME makes this file the user settings: the turn cap, the auth type, and nothing
    // sent besides model calls (no telemetry, usage statistics or update checks)
    writeSettings(input.homeDir, settingsFor(input));
    return {
      args,
      env: {
        GEMINI_CLI_HOME: input.homeDir,
        ...gatewayEnv(this.credentialEnv, input.gateway, (g) => ({
          GOOGLE_GEMINI_BASE_URL: g.baseUrl,
          GEMINI_API_KEY: g.credential,
        })),
      },
    };
  }

  parse(output: ProcessOutput): ParsedOutput {
    const result = jsonBlocks(output.stdout)
      .reverse()
      .find((o) => 'response' in o || 'stats' in o);
    const error = this.error(output);
    let inputTokens = 0;
    let cachedInputTokens = 0;
    let outputTokens = 0;
    let costUsd = 0;
    for (const [model, stats] of Object.entries(obj(obj(result?.stats).models))) {
      const t = obj(obj(stats).tokens);
      const u = {
        inputTokens: num(t.prompt),
        cachedInputTokens: num(t.cached),
        // thinking tokens are billed as output
        outputTokens: num(t.candidates) + num(t.thoughts),
      };
      inputTokens += u.inputTokens;
      cachedInputTokens += u.cachedInputTokens;
      outputTokens += u.outputTokens;
      costUsd += costOf(u, priceFor(model));
    }
    const failed = error !== undefined || output.exitCode !== 0 || !result;
    const warnings = Array.isArray(result?.warnings)
      ? result.warnings.filter((w) => typeof w === 'string')
      : [];
    const loop = warnings.find((w) => LOOP_WARNING.test(w));
    return {
      text: str(result?.response),
      sessionId: str(result?.session_id) ?? str(error?.sessionId),
      usage: { inputTokens, cachedInputTokens, outputTokens, costUsd },
      reportedError: failed,
      errorMessage: failed
        ? (error?.message ?? lastLine(output.stderr))
        : loop && `Gemini CLI stopped the run itself: "${loop}" (its own loop detection).`,
      ...(loop && !failed ? { fatalCode: 'loop_detected' as const } : {}),
    };
  }

  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined {
    if (output.timedOut) return 'timeout';
    if (!parsed.reportedError) return undefined;
    if (output.signal) return 'crash';
    const error = this.error(output);
    const exit = output.exitCode ?? 0;
    if (exit === EXIT_AUTH || error?.type === 'FatalAuthenticationError') return 'auth';
    if (exit === EXIT_TURN_LIMIT || error?.type === 'FatalTurnLimitedError') return 'budget';
    if (error?.type === 'TerminalQuotaError' || error?.type === 'RetryableQuotaError') return 'rate_limit';
    const byStatus = classifyStatus(error?.code ?? 0) ?? classifyExitStatus(exit);
    if (byStatus) return byStatus;
    return classifyText(error?.message ?? '') ?? classifyText(output.stderr) ?? 'crash';
  }

  /** The error object Gemini prints (on stderr in json mode; stdout is checked too). */
  private error(
    output: ProcessOutput,
  ): { type?: string; message?: string; code?: number; sessionId?: string } | undefined {
    const found = [...jsonBlocks(output.stderr), ...jsonBlocks(output.stdout)].find(
      (o) => o.error && typeof o.error === 'object',
    );
    if (!found) return undefined;
    const e = obj(found.error);
    return {
      type: str(e.type),
      message: str(e.message),
      code: typeof e.code === 'number' ? e.code : undefined,
      sessionId: str(found.session_id),
    };
  }
}

/** An API error exits with its HTTP status mod 256: 429 → 173, 500 → 244, 503 → 247, 401 → 145. */
function classifyExitStatus(exit: number): ProviderErrorClass | undefined {
  for (const status of [401, 403, 429, 500, 502, 503, 504, 529]) {
    if (status % 256 === exit) return classifyStatus(status);
  }
  return undefined;
}

/** Gemini CLI's user settings for a run. */
function settingsFor(input: DriverInput): Record<string, unknown> {
  const settings: Record<string, unknown> = {
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
  };
  if (input.maxTurns !== undefined) settings.model = { maxSessionTurns: input.maxTurns };
  // With a base URL alone Gemini CLI 0.61 picks an auth type its headless mode rejects (exit 41).
  // A system settings file would do, but Gemini CLI skips one that is not root's in root-owned
  // folders, which the agent's private home is not: the user settings select it.
  if (input.gateway) settings.security = { auth: { selectedType: 'gemini-api-key' } };
  return settings;
}

function writeSettings(homeDir: string, settings: Record<string, unknown>): void {
  if (!existsSync(homeDir)) return; // no private home (a dry run): nothing to start
  const dir = `${homeDir}/.gemini`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/settings.json`, JSON.stringify(settings));
}
