import { ConfigError } from '../core/errors.js';

/** Reads a required environment variable; a missing one fails the cold start with a clear message. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new ConfigError(
      `The environment variable ${name} is not set; the stack sets it for this function.`,
    );
  }
  return value;
}

/** Providers whose CLIs the worker image carries (comma separated in AUTODEV_PROVIDERS). */
export function availableProviders(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.AUTODEV_PROVIDERS ?? 'claude')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
