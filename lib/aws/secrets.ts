import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { ConfigError } from '../core/errors.js';

/** Variables a provider secret may carry: CLI credentials and settings, and a git token for pushing. */
const ALLOWED =
  /^(ANTHROPIC|CLAUDE_CODE|OPENAI|CODEX|GEMINI|GOOGLE|CURSOR|OPENCODE|OLLAMA|OPENROUTER|AIDER|AZURE|MISTRAL|DEEPSEEK|GROQ|LLAMA|GIT)_[A-Z0-9_]*$/;

/**
 * Reads the provider credentials (a JSON object of NAME: value) from Secrets Manager through
 * Powertools parameters, cached for `maxAgeSeconds`. Unknown names are dropped so the secret can
 * never override PATH or other basics of the agent's environment.
 */
export async function loadProviderSecrets(
  secretId: string,
  maxAgeSeconds = 300,
): Promise<Record<string, string>> {
  const value = await getSecret<Record<string, unknown>>(secretId, {
    transform: 'json',
    maxAge: maxAgeSeconds,
  });
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`The secret ${secretId} must be a JSON object of NAME: "value" pairs.`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (ALLOWED.test(k) && typeof v === 'string') out[k] = v;
  }
  return out;
}
