import type { ProviderDriver } from '../../core/ports.js';
import { ClaudeDriver } from './claude.js';
import { CodexDriver } from './codex.js';
import { GeminiDriver } from './gemini.js';

/** Every driver, by name. Provider entries in config name one of these. */
export const DRIVERS: Record<string, ProviderDriver> = {
  claude: new ClaudeDriver(),
  codex: new CodexDriver(),
  gemini: new GeminiDriver(),
};

export function driverFor(name: string): ProviderDriver | undefined {
  return DRIVERS[name];
}
