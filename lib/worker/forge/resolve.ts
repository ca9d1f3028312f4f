import { z } from 'zod';
import { GitHubForge } from './github.js';
import { GitLabForge } from './gitlab.js';
import { parseRepoUrl } from './repo-url.js';
import { ForgeError, type ForgePort } from './types.js';

const secretName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a secret name (letters, digits, "_")');

/** One forge host in the configuration. */
export const ForgeEntry = z
  .object({
    /** The host of repository URLs, with the port if they carry one: `github.example.com`. */
    host: z
      .string()
      .min(1)
      .transform((h) => h.toLowerCase()),
    kind: z.enum(['github', 'gitlab']),
    /** `https://HOST/api/v3` (GitHub Enterprise Server), `https://HOST/api/v4` (GitLab). */
    apiBaseUrl: z.url(),
    /** Name of the secret that holds the API token. */
    tokenSecret: secretName.optional(),
    /** GitHub only: authenticate as a GitHub App installation instead of with a token. */
    app: z
      .object({
        appId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]),
        installationId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]),
        /** Name of the secret that holds the App's private key (PEM). */
        privateKeySecret: secretName,
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((e) => !(e.app && e.kind !== 'github'), 'app credentials are for GitHub only');
export type ForgeEntry = z.output<typeof ForgeEntry>;
export const ForgeConfig = z.array(ForgeEntry).default([]);
export type ForgeConfig = z.input<typeof ForgeConfig>;

/** Known without configuration. Configured entries for the same host replace them. */
export const DEFAULT_FORGES: readonly ForgeEntry[] = [
  { host: 'github.com', kind: 'github', apiBaseUrl: 'https://api.github.com', tokenSecret: 'GITHUB_TOKEN' },
  {
    host: 'gitlab.com',
    kind: 'gitlab',
    apiBaseUrl: 'https://gitlab.com/api/v4',
    tokenSecret: 'GITLAB_TOKEN',
  },
];

/** The configured (or default) forge entry for a repository URL's host, if any. */
export function forgeEntryFor(repoUrl: string, entries: readonly ForgeEntry[]): ForgeEntry | undefined {
  const loc = parseRepoUrl(repoUrl);
  if (!loc) return undefined;
  return (
    entries.find((e) => e.host === loc.host) ??
    DEFAULT_FORGES.find((e) => e.host === loc.host && !entries.some((c) => c.host === e.host))
  );
}

export interface ResolveForgeOptions {
  fetch?: typeof fetch;
}

/**
 * The forge that hosts `repoUrl`, from its host: configured entries first, then github.com and
 * gitlab.com. Undefined when the repository is on no known forge (local paths, other hosts): the pushed
 * branch is then the task's result. Throws ForgeError when the forge is known but its credentials
 * are missing from `secrets`.
 */
export function resolveForge(
  repoUrl: string,
  entries: readonly ForgeEntry[],
  secrets: Readonly<Record<string, string | undefined>>,
  opts: ResolveForgeOptions = {},
): ForgePort | undefined {
  const entry = forgeEntryFor(repoUrl, entries);
  if (!entry) return undefined;
  const secret = (name: string) => {
    const value = secrets[name]?.trim();
    if (!value) {
      throw new ForgeError(
        `${entry.host} is a ${entry.kind === 'github' ? 'GitHub' : 'GitLab'} forge, but the secret ${name} is not set: no pull request can be opened.`,
      );
    }
    return value;
  };
  if (entry.kind === 'gitlab') {
    return new GitLabForge({
      apiBaseUrl: entry.apiBaseUrl,
      token: secret(entry.tokenSecret ?? 'GITLAB_TOKEN'),
      fetch: opts.fetch,
    });
  }
  if (entry.app) {
    return new GitHubForge({
      apiBaseUrl: entry.apiBaseUrl,
      auth: {
        appId: entry.app.appId,
        installationId: entry.app.installationId,
        // secret stores often keep PEMs on one line with literal \n
        privateKey: secret(entry.app.privateKeySecret).replace(/\\n/g, '\n'),
      },
      fetch: opts.fetch,
    });
  }
  return new GitHubForge({
    apiBaseUrl: entry.apiBaseUrl,
    auth: { token: secret(entry.tokenSecret ?? 'GITHUB_TOKEN') },
    fetch: opts.fetch,
  });
}
