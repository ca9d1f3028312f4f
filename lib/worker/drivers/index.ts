import { ConfigError } from '../../core/errors.js';
import type { ProviderDriver } from '../../core/ports.js';
import { AiderDriver } from './aider.js';
import { ClaudeDriver } from './claude.js';
import { CodexDriver } from './codex.js';
import { CursorDriver } from './cursor.js';
import { GeminiDriver } from './gemini.js';
import { OpencodeDriver } from './opencode.js';

/**
 * Every driver, by name, set up from configuration. Local models are switched on per CLI:
 * - `AUTODEV_CODEX_OSS=ollama|lmstudio`: Codex with `--oss --local-provider <it>` (no key, no cost).
 * - `AUTODEV_OPENCODE_BASE_URL` + `AUTODEV_OPENCODE_MODELS` (comma-separated), optional
 *   `AUTODEV_OPENCODE_PROVIDER` (provider id, default `local`) and `AUTODEV_OPENCODE_API_KEY_ENV`:
 *   opencode with that OpenAI-compatible server declared as a provider.
 * - `AUTODEV_AIDER_OLLAMA_API_BASE`: aider against an Ollama server (`ollama_chat/<model>`).
 * Claude Code needs no switch: `ANTHROPIC_BASE_URL` + `ANTHROPIC_AUTH_TOKEN` reach it as they are.
 */
export function createDrivers(env: Record<string, string | undefined> = {}): Record<string, ProviderDriver> {
  const codexOss = env.AUTODEV_CODEX_OSS;
  const opencodeUrl = env.AUTODEV_OPENCODE_BASE_URL;
  const opencodeModels = (env.AUTODEV_OPENCODE_MODELS ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (opencodeUrl && opencodeModels.length === 0)
    throw new ConfigError(
      'AUTODEV_OPENCODE_BASE_URL needs AUTODEV_OPENCODE_MODELS: the models that server serves.',
    );
  const ollamaApiBase = env.AUTODEV_AIDER_OLLAMA_API_BASE;
  return {
    claude: new ClaudeDriver(),
    codex: new CodexDriver(
      codexOss
        ? { oss: true, localProvider: codexOss === '1' || codexOss === 'true' ? undefined : codexOss }
        : {},
    ),
    gemini: new GeminiDriver(),
    cursor: new CursorDriver(),
    opencode: new OpencodeDriver(
      opencodeUrl
        ? {
            local: {
              id: env.AUTODEV_OPENCODE_PROVIDER ?? 'local',
              baseUrl: opencodeUrl,
              models: opencodeModels,
              apiKeyEnv: env.AUTODEV_OPENCODE_API_KEY_ENV,
            },
          }
        : {},
    ),
    aider: new AiderDriver(ollamaApiBase ? { ollamaApiBase } : {}),
  };
}

/** Every driver with its hosted defaults, by name. Provider entries in config name one of these. */
export const DRIVERS: Record<string, ProviderDriver> = createDrivers();

export function driverFor(name: string): ProviderDriver | undefined {
  return DRIVERS[name];
}

/** Settings each CLI reads besides its credentials (base URLs, its own switches), by driver name. */
const OWN_PREFIXES: Readonly<Record<string, readonly string[]>> = {
  claude: ['ANTHROPIC_', 'CLAUDE_CODE_'],
  codex: ['OPENAI_', 'CODEX_', 'AZURE_OPENAI_'],
  gemini: ['GEMINI_', 'GOOGLE_'],
  cursor: ['CURSOR_'],
  // OPENAI_BASE_URL: the upstream of opencode's calls through the model gateway
  opencode: ['OPENCODE_', 'OPENAI_BASE_URL'],
  aider: ['AIDER_', 'OLLAMA_'],
};

/**
 * The variables of `pool` that belong to the CLI `driver` runs: its credentials (`credentialEnv`:
 * a CLI that can call several model providers, as aider and opencode, lists each) and its own
 * settings. An agent's environment holds these and no other provider's key.
 */
export function ownEnv(
  driver: ProviderDriver,
  pool: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const prefixes = OWN_PREFIXES[driver.name] ?? [];
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(pool)) {
    if (v === undefined) continue;
    if (driver.credentialEnv.includes(k) || prefixes.some((p) => k.startsWith(p))) out[k] = v;
  }
  return out;
}
