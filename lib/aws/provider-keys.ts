import { hasCredentials } from '../core/credentials.js';

export interface ProviderKeysOptions {
  /** Providers whose CLIs the worker image carries. */
  names: readonly string[];
  /** The variables each provider's CLI accepts as its key (any one will do). */
  credentialEnv: (provider: string) => readonly string[] | undefined;
  /** The provider secret's NAME: value pairs (cached by the caller); none: image only. */
  load?: () => Promise<Record<string, string>>;
}

/**
 * Which providers may take an attempt on AWS: in the worker image, and with a key in the provider
 * secret in Secrets Manager. A provider without a key is never chosen, nor failed over to. Only
 * the names of the secret's keys are kept.
 */
export class ProviderKeys {
  constructor(private readonly o: ProviderKeysOptions) {}

  /** The availability test for this invocation (reads the secret through its cache). */
  async available(): Promise<(provider: string) => boolean> {
    const { names, credentialEnv, load } = this.o;
    if (!load) return (p) => names.includes(p);
    const set = new Set(
      Object.entries(await load())
        .filter(([, v]) => v !== '')
        .map(([k]) => k),
    );
    return (p) => names.includes(p) && hasCredentials(credentialEnv(p) ?? [], (n) => set.has(n));
  }
}
