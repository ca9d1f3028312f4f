import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
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
import { costOf, priceFor } from './pricing.js';

/** A local OpenAI-compatible server (Ollama, llama.cpp, LM Studio, vLLM) declared as an opencode provider. */
export interface OpencodeLocalProvider {
  /** Provider id, the part before `/` in `-m`: `ollama`. */
  id: string;
  /** Display name; the id when absent. */
  name?: string;
  /** The server's OpenAI-compatible base URL, e.g. `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  /** Models the server serves; the first is used when the run names none. */
  models: string[];
  /** A variable holding the server's API key, when it wants one (vLLM `--api-key`). */
  apiKeyEnv?: string;
}

export interface OpencodeDriverOptions {
  /** Run against a local server instead of a hosted provider. */
  local?: OpencodeLocalProvider;
  /** `provider/model` used when the run names no model. */
  defaultModel?: string;
}

/**
 * What opencode sends besides model calls, switched off: update checks, the models.dev model list
 * (about two minutes of retries per run offline), sharing, language-server downloads, the default
 * plugins it installs from npm, and Claude Code's files it would otherwise read.
 */
const QUIET = {
  OPENCODE_DISABLE_AUTOUPDATE: '1',
  OPENCODE_DISABLE_MODELS_FETCH: '1',
  OPENCODE_DISABLE_SHARE: '1',
  OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
  OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
  OPENCODE_DISABLE_CLAUDE_CODE: '1',
};

/** Config for every run: no session snapshots (a git copy of the worktree per step), sharing or updates. */
const QUIET_CONFIG = {
  $schema: 'https://opencode.ai/config.json',
  snapshot: false,
  share: 'disabled',
  autoupdate: false,
};

/** The provider id the gateway session is declared under. */
const GATEWAY_PROVIDER = 'autodev-gateway';
/** The model asked for through the gateway when neither the run nor the configuration names one. */
const DEFAULT_GATEWAY_MODEL = 'gpt-4.1';

/** A model id without its `provider/` prefix. */
function modelName(model: string): string {
  const slash = model.indexOf('/');
  return slash >= 0 ? model.slice(slash + 1) : model;
}

const HOSTED_KEYS = [
  'ANTHROPIC_API_KEY',
  'OPENAI_API_KEY',
  'GOOGLE_GENERATIVE_AI_API_KEY',
  'OPENROUTER_API_KEY',
  'GROQ_API_KEY',
  'DEEPSEEK_API_KEY',
];

/**
 * opencode: `opencode run --format json -m provider/model --auto PROMPT` with stdin closed.
 * Prints JSON events; cost and tokens are summed over `step_finish`; a session error is an
 * `error` event and exit 1. Its files follow XDG: config, data and cache dirs in the private home.
 */
export class OpencodeDriver implements ProviderDriver {
  readonly name = 'opencode';
  readonly bin = 'opencode';
  readonly credentialEnv: readonly string[];

  constructor(private readonly options: OpencodeDriverOptions = {}) {
    const local = options.local;
    this.credentialEnv = local ? (local.apiKeyEnv ? [local.apiKeyEnv] : []) : HOSTED_KEYS;
  }

  command(input: DriverInput): CommandLine {
    const prompt = input.systemPrompt ? `${input.systemPrompt}\n\n${input.prompt}` : input.prompt;
    const model = input.gateway ? this.gatewayModel(input.model) : this.model(input.model);
    const args = ['run', '--format', 'json'];
    if (model) args.push('-m', model);
    // yargs: what follows `--` is the message, even when it begins with "-"
    args.push('--auto', '--', prompt);
    const env: Record<string, string> = {
      XDG_CONFIG_HOME: `${input.homeDir}/.config`,
      XDG_DATA_HOME: `${input.homeDir}/.local/share`,
      XDG_CACHE_HOME: `${input.homeDir}/.cache`,
      XDG_STATE_HOME: `${input.homeDir}/.local/state`,
      ...QUIET,
    };
    let provider: Record<string, unknown> | undefined;
    if (input.gateway && model) {
      // the gateway session as an OpenAI-compatible provider of its own, holding the session credential
      const g = input.gateway;
      Object.assign(
        env,
        gatewayEnv(this.credentialEnv, g, () => ({})),
      );
      provider = providerConfig(
        { id: GATEWAY_PROVIDER, baseUrl: g.baseUrl, models: [modelName(model)] },
        g.credential,
      );
    } else if (this.options.local) provider = providerConfig(this.options.local);
    env.OPENCODE_CONFIG_CONTENT = JSON.stringify({ ...QUIET_CONFIG, ...(provider && { provider }) });
    skipPluginInstall(`${env.XDG_CONFIG_HOME}/opencode`);
    return { args, env };
  }

  /** `autodev-gateway/<model>`: the run's model (or the default) with its provider swapped for the gateway's. */
  private gatewayModel(requested: string | undefined): string | undefined {
    const model =
      requested ?? this.options.defaultModel ?? this.options.local?.models[0] ?? DEFAULT_GATEWAY_MODEL;
    return `${GATEWAY_PROVIDER}/${modelName(model)}`;
  }

  private model(requested: string | undefined): string | undefined {
    const local = this.options.local;
    const model = requested ?? this.options.defaultModel ?? local?.models[0];
    if (model && local && !model.includes('/')) return `${local.id}/${model}`;
    return model;
  }

  /**
   * `input` (the run's model, through the gateway) prices the tokens when opencode reports no cost:
   * it reports $0 for a provider declared in its config, as the gateway's is.
   */
  parse(output: ProcessOutput, input?: Pick<DriverInput, 'model' | 'gateway'>): ParsedOutput {
    let sessionId: string | undefined;
    let text: string | undefined;
    let inputTokens = 0;
    let cachedInputTokens = 0;
    let outputTokens = 0;
    let costUsd = 0;
    let errorMessage: string | undefined;
    for (const e of jsonLines(output.stdout)) {
      sessionId ??= str(e.sessionID);
      const part = obj(e.part);
      if (e.type === 'text') text = str(part.text) ?? text;
      else if (e.type === 'step_finish') {
        const t = obj(part.tokens);
        const cache = obj(t.cache);
        inputTokens += num(t.input) + num(cache.read) + num(cache.write);
        cachedInputTokens += num(cache.read);
        outputTokens += num(t.output) + num(t.reasoning);
        costUsd += num(part.cost);
      } else if (e.type === 'error') {
        const err = obj(e.error);
        errorMessage = str(obj(err.data).message) ?? str(err.name) ?? 'session error';
      }
    }
    const failed = errorMessage !== undefined || output.exitCode !== 0;
    const usage = { inputTokens, cachedInputTokens, outputTokens };
    if (costUsd === 0 && input?.gateway) {
      const model = this.gatewayModel(input.model);
      costUsd = costOf(usage, priceFor(model && modelName(model)));
    }
    return {
      text,
      sessionId,
      usage: { ...usage, costUsd },
      reportedError: failed,
      errorMessage: errorMessage?.slice(0, 500) ?? (failed ? lastLine(output.stderr) : undefined),
    };
  }

  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined {
    if (output.timedOut) return 'timeout';
    const events = jsonLines(output.stdout);
    if (!parsed.reportedError && events.some((e) => e.type === 'step_finish')) return undefined;
    if (output.signal) return 'crash';
    const error = events.reverse().find((e) => e.type === 'error');
    if (error) {
      const err = obj(error.error);
      if (err.name === 'ProviderAuthError') return 'auth';
      const byStatus = classifyStatus(num(obj(err.data).statusCode));
      if (byStatus) return byStatus;
    }
    // exit 0 without a finished step: nothing ran
    return classifyText(parsed.errorMessage ?? '') ?? classifyText(output.stderr) ?? 'crash';
  }
}

/**
 * opencode installs its plugin package (`@opencode-ai/plugin`, from the npm registry) into every
 * config folder at start, unless the folder's lockfile already lists it; no plugin is used here.
 */
function skipPluginInstall(configDir: string): void {
  if (!existsSync(dirname(dirname(configDir)))) return; // no private home (a dry run): nothing to start
  mkdirSync(`${configDir}/node_modules`, { recursive: true });
  const lock = {
    name: 'opencode-config',
    lockfileVersion: 3,
    packages: { '': { dependencies: { '@opencode-ai/plugin': '*' } } },
  };
  writeFileSync(`${configDir}/package-lock.json`, JSON.stringify(lock));
}

/** The opencode provider entry declaring a server (a local one, the gateway) as OpenAI-compatible. */
function providerConfig(local: OpencodeLocalProvider, apiKey?: string): Record<string, unknown> {
  const options: Record<string, string> = { baseURL: local.baseUrl };
  if (apiKey) options.apiKey = apiKey;
  else if (local.apiKeyEnv) options.apiKey = `{env:${local.apiKeyEnv}}`;
  return {
    [local.id]: {
      npm: '@ai-sdk/openai-compatible',
      name: local.name ?? local.id,
      options,
      models: Object.fromEntries(local.models.map((m) => [m, { name: m }])),
    },
  };
}
