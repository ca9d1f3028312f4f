import type { ProviderDriver } from '../../core/ports.js';
import { AiderDriver } from './aider.js';
import { ClaudeDriver } from './claude.js';
import { CodexDriver } from './codex.js';
import { CursorDriver } from './cursor.js';
import { GeminiDriver } from './gemini.js';
import { OpencodeDriver } from './opencode.js';

/** Every driver, by name. Provider entries in config name one of these. */
export const DRIVERS: Record<string, ProviderDriver> = {
  claude: new ClaudeDriver(),
  codex: new CodexDriver(),
  gemini: new GeminiDriver(),
  cursor: new CursorDriver(),
  opencode: new OpencodeDriver(),
  aider: new AiderDriver(),
};

export function driverFor(name: string): ProviderDriver | undefined {
  return DRIVERS[name];
}
