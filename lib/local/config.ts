import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_HIGH_PRIORITY_ROLES, parseDuration } from '../core/access.js';
import { claimMappingFrom } from '../core/claims.js';
import { DEFAULT_AUDIT_HOLD_DAYS } from '../core/erasure.js';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_AGING_MS, type FairSharePolicy, parseFairShares } from '../core/fair-share.js';
import { type PriceTable, PriceTableConfig, priceTableWith, TOKEN_PRICES } from '../core/metering.js';
import type { BreakerPolicy, RatePolicy } from '../core/provider-health.js';
import { parseQuotas, type QuotaPolicy } from '../core/quotas.js';
import { canonicalHost, type RepoPolicy } from '../core/repo-policy.js';
import { DEFAULT_RETENTION_DAYS } from '../core/retention.js';
import { AgentRole, BUILT_IN_ROLES } from '../core/roles.js';
import { DEFAULT_ROUTING_POLICY, type RoutingPolicy } from '../core/routing.js';
import { AccessRole } from '../core/schemas.js';
import type { WebSignIn } from '../core/web-policy.js';
import { createDrivers, ownEnv } from '../worker/drivers/index.js';
import { DEFAULT_FORGES, ForgeConfig, type ForgeEntry } from '../worker/forge/resolve.js';
import { secretsIn } from '../worker/known-secrets.js';
import { NotificationConfig, type NotificationTarget } from '../worker/notify.js';
import type { ProviderConfig } from '../worker/run-attempt.js';
import type { SandboxSetting } from '../worker/sandbox.js';
import type { HttpLimits } from './http-gateway.js';
import type { OidcSettings } from './oidc.js';

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

const EnvSchema = z.object({
  AUTODEV_HOME: z.string().default('.autodev'),
  AUTODEV_HOST: z.string().default('127.0.0.1'),
  AUTODEV_PORT: int(8001, 0, 65535),
  AUTODEV_CONCURRENCY: int(2, 1, 256),
  AUTODEV_TASK_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(86_400).optional(),
  AUTODEV_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).optional(),
  AUTODEV_RETRY_BASE_MS: int(2000, 0, 3_600_000),
  AUTODEV_RETRY_MAX_MS: int(300_000, 0, 86_400_000),
  AUTODEV_LEASE_SECONDS: z.coerce.number().min(0.5).max(3600).default(30),
  AUTODEV_DRAIN_SECONDS: z.coerce.number().min(0).max(3600).default(20),
  AUTODEV_BRANCH_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._/-]*$/)
    .default('autodev/'),
  AUTODEV_GIT_AUTHOR_NAME: z.string().min(1).default('AutoDev'),
  AUTODEV_GIT_AUTHOR_EMAIL: z.string().min(3).default('autodev@localhost'),
  AUTODEV_WORKSPACES: z.string().optional(),
  AUTODEV_KEEP_WORKSPACES: z.enum(['0', '1', 'true', 'false']).default('0'),
  AUTODEV_MERGE_TRAIN: z.enum(['on', 'off']).default('off'),
  AUTODEV_BREAKER_FAILURES: int(5, 1, 1000),
  AUTODEV_BREAKER_WINDOW_SECONDS: z.coerce.number().positive().max(86_400).default(60),
  AUTODEV_BREAKER_OPEN_SECONDS: z.coerce.number().positive().max(86_400).default(60),
  AUTODEV_PROVIDER_RATE: z.coerce.number().positive().max(10_000).default(1),
  AUTODEV_PROVIDER_BURST: z.coerce.number().min(1).max(10_000).default(10),
  /** Share of `provider: "auto"` choices left to exploration (0 to 1). */
  AUTODEV_ROUTING_EXPLORATION: z.coerce.number().min(0).max(1).default(DEFAULT_ROUTING_POLICY.exploration),
  /** Days of recorded outcomes routing reads. */
  AUTODEV_ROUTING_WINDOW_DAYS: int(DEFAULT_ROUTING_POLICY.windowDays, 1, 90),
  /** How long routing keeps a tenant's figures for a role before it reads them again. */
  AUTODEV_ROUTING_CACHE_SECONDS: z.coerce.number().min(0).max(3600).default(5),
  AUTODEV_EXECUTOR: z.enum(['0', '1', 'true', 'false']).default('1'),
  AUTODEV_MODEL_GATEWAY: z.enum(['0', '1', 'true', 'false']).default('1'),
  AUTODEV_LOOP_THRESHOLD: int(8, 2, 1000),
  AUTODEV_LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']).default('INFO'),
  AUTODEV_PUBLIC_URL: z.url().optional(),
  AUTODEV_FORGES: z.string().optional(),
  AUTODEV_ALLOWED_REPO_HOSTS: z.string().default(''),
  AUTODEV_HTTP_REQUEST_TIMEOUT_MS: int(30_000, 100, 3_600_000),
  AUTODEV_HTTP_HEADERS_TIMEOUT_MS: int(10_000, 100, 3_600_000),
  AUTODEV_HTTP_KEEPALIVE_TIMEOUT_MS: int(5_000, 100, 3_600_000),
  AUTODEV_HTTP_MAX_CONNECTIONS: int(512, 1, 100_000),
  AUTODEV_MAX_TOKEN_TTL: z
    .string()
    .refine((s) => (parseDuration(s) ?? 0) > 0, 'a duration such as 30m, 24h or 7d')
    .default('24h'),
  AUTODEV_CLOCK_SKEW_SECONDS: int(DEFAULT_CLOCK_SKEW_SECONDS, 0, 300),
  AUTODEV_OIDC_ISSUER: z.url().optional(),
  AUTODEV_OIDC_AUDIENCE: z.string().default(''),
  AUTODEV_OIDC_TENANT_CLAIM: z.string().optional(),
  AUTODEV_OIDC_ROLE_CLAIM: z.string().optional(),
  AUTODEV_OIDC_ROLE_MAP: z.string().default(''),
  AUTODEV_OIDC_JWKS_MAX_AGE_SECONDS: int(600, 1, 86_400),
  AUTODEV_OIDC_JWKS_COOLDOWN_SECONDS: int(30, 0, 3600),
  /** The dashboard signs in through the OIDC issuer as this public client (authorization code + PKCE). */
  AUTODEV_WEB_OIDC_CLIENT_ID: z.string().trim().optional(),
  AUTODEV_WEB_OIDC_SCOPE: z.string().trim().default('openid'),
  AUTODEV_QUOTAS: z.string().default(''),
  AUTODEV_FAIR_SHARES: z.string().default(''),
  AUTODEV_PRIORITY_AGING_SECONDS: z.coerce
    .number()
    .min(0.1)
    .max(7 * 86_400)
    .default(DEFAULT_AGING_MS / 1000),
  /** Days finished tasks and their logs are kept (fractions allowed); 0 keeps them forever. */
  AUTODEV_RETENTION_DAYS: z.coerce.number().min(0).max(36_500).default(DEFAULT_RETENTION_DAYS),
  AUTODEV_RETENTION_SWEEP_SECONDS: z.coerce.number().min(0.05).max(86_400).default(3600),
  /** Audit entries younger than this many days survive a tenant's erasure (the legal hold). */
  AUTODEV_AUDIT_HOLD_DAYS: z.coerce.number().min(0).max(36_500).default(DEFAULT_AUDIT_HOLD_DAYS),
  AUTODEV_HIGH_PRIORITY_ROLES: z.string().default(DEFAULT_HIGH_PRIORITY_ROLES.join(',')),
  AUTODEV_LOCAL_REPO_ROOTS: z.string().default(''),
  /** `off` runs agents unconfined; by default they run in bubblewrap, or not at all. */
  AUTODEV_SANDBOX: z.enum(['on', 'off']).default('on'),
  /** The user agents run as when the server runs as root (default nobody:nogroup). */
  AUTODEV_SANDBOX_UID: int(65534, 1, 4_294_967_294),
  AUTODEV_SANDBOX_GID: int(65534, 1, 4_294_967_294),
  /** The bubblewrap binary, when not Debian's /usr/bin/bwrap. */
  AUTODEV_BWRAP: z.string().min(1).optional(),
  AUTODEV_GITHUB_WEBHOOK_TENANT: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
    .default('default'),
});

export interface LocalConfig {
  home: string;
  host: string;
  port: number;
  concurrency: number;
  leaseMs: number;
  drainMs: number;
  defaultTimeoutSeconds: number;
  retryPolicy: { baseDelayMs: number; maxDelayMs: number };
  branchPrefix: string;
  author: { name: string; email: string };
  workspacesDir: string;
  mirrorsDir: string;
  dbFile: string;
  keyFile: string;
  keepWorkspaces: boolean;
  /** Without a forge, keep the merge train branch (AUTODEV_MERGE_TRAIN=on). */
  mergeTrain: boolean;
  breaker: BreakerPolicy;
  rate: RatePolicy;
  /** Routing of `provider: "auto"` tasks, and how long its figures are kept (ms). */
  routing: RoutingPolicy & { cacheMs: number };
  /** Run tasks in this process (false: serve the API only, another process executes). */
  executor: boolean;
  /** Put the model gateway between agents and their providers (README "The model gateway"). */
  modelGateway: boolean;
  /** What the gateway prices each model call at: the built-in table with `prices` of providers.yaml over it. */
  modelPrices: PriceTable;
  /** The same tool call this many times in a row ends the attempt `loop_detected` (AUTODEV_LOOP_THRESHOLD). */
  loopThreshold: number;
  logLevel: string;
  roles: Record<string, AgentRole>;
  providers: Record<string, ProviderConfig>;
  /** What every agent process sees of the environment: the basics; its provider adds its own variables. */
  agentEnv: Record<string, string>;
  /** The environment and `secrets.env` together: secrets looked up by name (forge tokens, webhook URLs). */
  secrets: Record<string, string | undefined>;
  /**
   * The values that are secret, by name: everything in `secrets.env`, the environment's `*_KEY`,
   * `*_TOKEN`, `*_SECRET`… variables, forge tokens and the webhook secret. Never pushed, never logged.
   */
  secretValues: Record<string, string>;
  /** Forge hosts beyond github.com and gitlab.com, or replacing them (`forges.yaml`, `AUTODEV_FORGES`). */
  forges: ForgeEntry[];
  /** Time-outs and the connection cap of the HTTP server. */
  http: HttpLimits;
  /** The longest lifetime of a token the server accepts, in seconds (AUTODEV_MAX_TOKEN_TTL). */
  maxTokenTtlSeconds: number;
  /** How far an issuer's clock may be from this server's, in seconds (AUTODEV_CLOCK_SKEW_SECONDS). */
  clockSkewSeconds: number;
  /** The company's identity provider whose tokens are accepted beside the local key (AUTODEV_OIDC_*). */
  oidc?: OidcSettings;
  /** The dashboard's sign-in through that issuer (AUTODEV_WEB_OIDC_CLIENT_ID): served as `/config.json`. */
  webSignIn?: WebSignIn;
  /** Tasks per hour and tasks not yet ended, per tenant (AUTODEV_QUOTAS; default unlimited). */
  quotas: QuotaPolicy;
  /** Access roles that may ask for `priority: "high"` (AUTODEV_HIGH_PRIORITY_ROLES). */
  highPriorityRoles: AccessRole[];
  /** Weights of tenants' shares and the priority aging step (AUTODEV_FAIR_SHARES, AUTODEV_PRIORITY_AGING_SECONDS). */
  fairShares: FairSharePolicy;
  /** Finished tasks and their logs go this long after they ended (AUTODEV_RETENTION_DAYS; 0: never). */
  retention: { days: number; sweepEveryMs: number };
  /** Audit entries younger than this many days survive a tenant's erasure (AUTODEV_AUDIT_HOLD_DAYS). */
  auditHoldDays: number;
  /** Which repositories tenants may name (AUTODEV_ALLOWED_REPO_HOSTS, AUTODEV_LOCAL_REPO_ROOTS). */
  repoPolicy: RepoPolicy;
  /** Slack and Teams targets for finished tasks (`notifications.yaml`). */
  notifications: NotificationTarget[];
  /** `POST /v1/webhooks/github`: the shared secret (none: the route answers 503) and the tenant its tasks belong to. */
  githubWebhook: { secret: string; tenant: string };
  /** Where people reach the API, for links in pull requests and notifications; default the server's own URL. */
  publicUrl?: string;
  /** How agents and gates are contained (AUTODEV_SANDBOX); checked at start. */
  sandbox: SandboxSetting;
}

/** Variables of agent CLIs: credentials, base URLs and settings; each CLI gets its own (`ownEnv`). */
const PROVIDER_VARS =
  /^(ANTHROPIC|CLAUDE_CODE|OPENAI|CODEX|GEMINI|GOOGLE|CURSOR|OPENCODE|OLLAMA|OPENROUTER|AIDER|AZURE|MISTRAL|DEEPSEEK|GROQ|LLAMA)_/;
const BASIC_VARS = [
  'PATH',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
  'SSL_CERT_FILE',
  'NODE_EXTRA_CA_CERTS',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
];

/** Parses KEY=VALUE lines (comments and blank lines allowed, optional quotes). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/);
    if (!m) continue;
    out[m[1] as string] = (m[2] as string).replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/** The first of `names` in `home` that exists, parsed as YAML (JSON is YAML). */
function readConfigFile(home: string, names: string[]): { file: string; data: unknown } | undefined {
  for (const name of names) {
    const file = join(home, name);
    if (!existsSync(file)) continue;
    try {
      return { file, data: parseYaml(readFileSync(file, 'utf8')) };
    } catch (err) {
      throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
    }
  }
  return undefined;
}

/** Validates a list of entries, given as the file's top level or under `key`; throws ConfigError naming the fields. */
function parseList<T extends z.ZodType>(schema: T, key: string, source: { file: string; data: unknown }) {
  const raw = source.data ?? [];
  const keyed =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw) && Object.keys(raw).join() === key;
  const parsed = schema.safeParse(keyed ? (raw as Record<string, unknown>)[key] : raw);
  if (parsed.success) return parsed.data as z.output<T>;
  const prefix = keyed ? `${key}.` : '';
  throw new ConfigError(
    `${source.file}: ${parsed.error.issues
      .map(
        (i) =>
          `${i.path.length ? prefix + i.path.join('.') : `(a list${keyed ? '' : `, or one under "${key}:"`})`}: ${i.message}`,
      )
      .join('; ')}`,
  );
}

/** Forge entries from `AUTODEV_FORGES` (JSON) or `$AUTODEV_HOME/forges.yaml`; the variable wins. */
function loadForges(home: string, json: string | undefined): ForgeEntry[] {
  let source: { file: string; data: unknown } | undefined;
  if (json?.trim()) {
    try {
      source = { file: 'AUTODEV_FORGES', data: JSON.parse(json) };
    } catch (err) {
      throw new ConfigError(`AUTODEV_FORGES: not valid JSON: ${(err as Error).message}`);
    }
  } else source = readConfigFile(home, ['forges.yaml', 'forges.yml', 'forges.json']);
  if (!source) return [];
  const forges = parseList(ForgeConfig, 'forges', source);
  const hosts = forges.map((e) => e.host);
  const twice = hosts.find((h, i) => hosts.indexOf(h) !== i);
  if (twice) throw new ConfigError(`${source.file}: the host ${twice} is listed twice`);
  return forges;
}

/** Notification targets from `$AUTODEV_HOME/notifications.yaml`. */
function loadNotifications(home: string): NotificationTarget[] {
  const source = readConfigFile(home, ['notifications.yaml', 'notifications.yml', 'notifications.json']);
  if (!source) return [];
  return parseList(NotificationConfig, 'notifications', source);
}

const RolesFile = z.object({ roles: z.record(z.string(), AgentRole.partial()) });

function loadRoles(home: string, env: z.infer<typeof EnvSchema>): Record<string, AgentRole> {
  const roles: Record<string, AgentRole> = structuredClone(BUILT_IN_ROLES);
  for (const name of ['roles.yaml', 'roles.yml', 'roles.json']) {
    const file = join(home, name);
    if (!existsSync(file)) continue;
    const parsed = RolesFile.safeParse(parseYaml(readFileSync(file, 'utf8')));
    if (!parsed.success)
      throw new ConfigError(
        `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    for (const [roleName, patch] of Object.entries(parsed.data.roles)) {
      const merged = {
        ...(roles[roleName] ?? { ...BUILT_IN_ROLES.backend, name: roleName, description: roleName }),
        ...patch,
        name: roleName,
      };
      const check = AgentRole.safeParse(merged);
      if (!check.success)
        throw new ConfigError(
          `${file}: role ${roleName}: ${check.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      roles[roleName] = check.data;
    }
  }
  for (const role of Object.values(roles)) {
    if (env.AUTODEV_TASK_TIMEOUT_SECONDS) role.timeoutSeconds = env.AUTODEV_TASK_TIMEOUT_SECONDS;
    if (env.AUTODEV_MAX_ATTEMPTS) role.maxAttempts = env.AUTODEV_MAX_ATTEMPTS;
  }
  return roles;
}

const Price = z
  .object({
    input: z.number().nonnegative(),
    output: z.number().nonnegative(),
    cachedInput: z.number().nonnegative().optional(),
  })
  .strict();
const ProviderEntry = z
  .object({
    /** Which driver runs it; defaults to the entry's name (`claude`, `codex`, ...). */
    driver: z.string().optional(),
    bin: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    /** Plain values for the CLI's environment (base URLs, non-secret settings). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    /** Names of variables taken from the environment or secrets.env and passed to this CLI only. */
    secrets: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default([]),
    maxConcurrent: z.number().int().min(1).max(1000).optional(),
    price: Price.optional(),
  })
  .strict();
const ProvidersFile = z
  .object({
    providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/), ProviderEntry).default({}),
    /** Per-model prices over the gateway's built-in table (USD per million tokens). */
    prices: PriceTableConfig.optional(),
  })
  .strict();

/**
 * The provider registry: one entry per driver (binary and model from AUTODEV_<NAME>_BIN/_MODEL), changed
 * or extended by `$AUTODEV_HOME/providers.yaml` — e.g. a second Claude Code entry pointed at a local
 * model with `ANTHROPIC_BASE_URL` and a zero price.
 */
function loadProviders(
  home: string,
  merged: Record<string, string | undefined>,
): { providers: Record<string, ProviderConfig>; prices: PriceTable } {
  const drivers = createDrivers(merged);
  const providerVars = Object.fromEntries(Object.entries(merged).filter(([k]) => PROVIDER_VARS.test(k)));
  const providers: Record<string, ProviderConfig> = {};
  let prices = TOKEN_PRICES;
  for (const [name, driver] of Object.entries(drivers)) {
    const key = name.toUpperCase().replace(/-/g, '_');
    providers[name] = {
      name,
      driver,
      bin: merged[`AUTODEV_${key}_BIN`] ?? driver.bin,
      model: merged[`AUTODEV_${key}_MODEL`],
      env: ownEnv(driver, providerVars),
    };
  }
  for (const fileName of ['providers.yaml', 'providers.yml', 'providers.json']) {
    const file = join(home, fileName);
    if (!existsSync(file)) continue;
    const parsed = ProvidersFile.safeParse(parseYaml(readFileSync(file, 'utf8')));
    if (!parsed.success) {
      throw new ConfigError(
        `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    prices = priceTableWith(parsed.data.prices);
    for (const [name, entry] of Object.entries(parsed.data.providers)) {
      const base = providers[name];
      const driverName = entry.driver ?? base?.driver.name ?? name;
      const driver = drivers[driverName];
      if (!driver) {
        throw new ConfigError(
          `${file}: providers.${name}: no driver "${driverName}" (drivers: ${Object.keys(drivers).join(', ')}).`,
        );
      }
      const env: Record<string, string> = {
        ...(base && base.driver === driver ? base.env : ownEnv(driver, providerVars)),
        ...entry.env,
      };
      for (const secret of entry.secrets) {
        const value = merged[secret];
        if (value === undefined)
          throw new ConfigError(`${file}: providers.${name}: the secret ${secret} is not set.`);
        env[secret] = value;
      }
      providers[name] = {
        name,
        driver,
        bin: entry.bin ?? base?.bin ?? driver.bin,
        model: entry.model ?? base?.model,
        env,
        maxConcurrent: entry.maxConcurrent,
        price: entry.price,
      };
    }
  }
  return { providers, prices };
}

/** `AUTODEV_ALLOWED_REPO_HOSTS`: host names or addresses, separated by commas. */
function parseAllowedHosts(value: string): string[] {
  const hosts = value
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const bad = hosts.filter((h) => !canonicalHost(h));
  if (bad.length)
    throw new ConfigError(`AUTODEV_ALLOWED_REPO_HOSTS: not host names or addresses: ${bad.join(', ')}`);
  return hosts;
}

/**
 * `AUTODEV_LOCAL_REPO_ROOTS`: `tenant=/dir[:/dir...]` entries separated by `;`, the tenant `*`
 * standing for every tenant, e.g. `acme=/srv/git/acme;*=/srv/git/shared`.
 */
function parseLocalRoots(value: string): Record<string, string[]> {
  const roots: Record<string, string[]> = {};
  for (const entry of value.split(';').map((e) => e.trim())) {
    if (!entry) continue;
    const m = entry.match(/^(\*|[a-z0-9][a-z0-9_-]{0,62})=(.+)$/);
    const dirs = m?.[2]?.split(':').filter(Boolean) ?? [];
    if (!m || dirs.length === 0 || dirs.some((d) => !isAbsolute(d))) {
      throw new ConfigError(
        `AUTODEV_LOCAL_REPO_ROOTS: "${entry}" is not tenant=/absolute/dir[:/dir...] (entries separated by ";").`,
      );
    }
    roots[m[1] as string] = [...(roots[m[1] as string] ?? []), ...dirs.map((d) => resolve(d))];
  }
  return roots;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** `AUTODEV_OIDC_*`: the issuer (https, or http on the loopback only), its audiences and claim mapping. */
function loadOidc(env: z.infer<typeof EnvSchema>): OidcSettings | undefined {
  const issuer = env.AUTODEV_OIDC_ISSUER;
  if (!issuer) return undefined;
  const url = new URL(issuer);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new ConfigError('AUTODEV_OIDC_ISSUER: must be an https URL (http only on 127.0.0.1 or localhost).');
  }
  const audience = list(env.AUTODEV_OIDC_AUDIENCE);
  if (audience.length === 0) {
    throw new ConfigError(
      'AUTODEV_OIDC_AUDIENCE: required with AUTODEV_OIDC_ISSUER (the client id or API identifier tokens are issued for).',
    );
  }
  return {
    issuer,
    audience,
    mapping: claimMappingFrom({
      tenantClaim: env.AUTODEV_OIDC_TENANT_CLAIM,
      roleClaim: env.AUTODEV_OIDC_ROLE_CLAIM,
      roleMap: env.AUTODEV_OIDC_ROLE_MAP,
    }),
    jwksMaxAgeMs: env.AUTODEV_OIDC_JWKS_MAX_AGE_SECONDS * 1000,
    jwksCooldownMs: env.AUTODEV_OIDC_JWKS_COOLDOWN_SECONDS * 1000,
  };
}

/** `AUTODEV_WEB_OIDC_*`: the dashboard's sign-in through the configured issuer, if a client id is set. */
function loadWebSignIn(
  env: z.infer<typeof EnvSchema>,
  oidc: OidcSettings | undefined,
): WebSignIn | undefined {
  const clientId = env.AUTODEV_WEB_OIDC_CLIENT_ID;
  if (!clientId) return undefined;
  if (!oidc)
    throw new ConfigError(
      'AUTODEV_WEB_OIDC_CLIENT_ID: needs AUTODEV_OIDC_ISSUER (the issuer to sign in with).',
    );
  if (!oidc.audience.includes(clientId)) {
    throw new ConfigError(
      'AUTODEV_WEB_OIDC_CLIENT_ID: must be one of AUTODEV_OIDC_AUDIENCE (the dashboard sends the ID token, whose audience is its client id).',
    );
  }
  return { issuer: oidc.issuer, clientId, scope: env.AUTODEV_WEB_OIDC_SCOPE || 'openid' };
}

/** `AUTODEV_HIGH_PRIORITY_ROLES`: access roles separated by commas (empty: nobody). */
function parseAccessRoles(value: string, variable: string): AccessRole[] {
  const roles = list(value);
  const bad = roles.filter((r) => !AccessRole.safeParse(r).success);
  if (bad.length) {
    throw new ConfigError(
      `${variable}: not access roles: ${bad.join(', ')} (roles: ${AccessRole.options.join(', ')}).`,
    );
  }
  return roles as AccessRole[];
}

/** Reads and validates the configuration once, at start; throws ConfigError with every problem found. */
export function loadLocalConfig(source: NodeJS.ProcessEnv = process.env): LocalConfig {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const env = parsed.data;
  const home = resolve(env.AUTODEV_HOME);
  const secretsFile = join(home, 'secrets.env');
  const secrets = existsSync(secretsFile) ? parseEnvFile(readFileSync(secretsFile, 'utf8')) : {};
  const merged: Record<string, string | undefined> = { ...source, ...secrets };
  const agentEnv: Record<string, string> = { TERM: 'dumb', CI: '1' };
  // the basics only: each provider's CLI gets its own credentials and settings (ownEnv), no other's
  for (const [k, v] of Object.entries(merged)) if (v !== undefined && BASIC_VARS.includes(k)) agentEnv[k] = v;
  agentEnv.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  const { providers, prices: modelPrices } = loadProviders(home, merged);
  const roles = loadRoles(home, env);
  for (const role of Object.values(roles)) {
    const unknown = role.providers.filter((p) => !providers[p]);
    if (unknown.length) {
      throw new ConfigError(
        `Role ${role.name} names unknown provider(s) ${unknown.join(', ')} (providers: ${Object.keys(providers).join(', ')}).`,
      );
    }
  }
  const workspaces = env.AUTODEV_WORKSPACES ?? join(home, 'workspaces');
  const forges = loadForges(home, env.AUTODEV_FORGES);
  const oidc = loadOidc(env);
  const secretValues: Record<string, string> = { ...secretsIn(source), ...secretsIn(secrets) };
  for (const [k, v] of Object.entries(secrets)) if (v) secretValues[k] = v;
  for (const p of Object.values(providers)) Object.assign(secretValues, secretsIn(p.env));
  for (const name of [...forges.map((f) => f.tokenSecret), ...DEFAULT_FORGES.map((f) => f.tokenSecret)]) {
    const value = name ? merged[name] : undefined;
    if (name && value) secretValues[name] = value;
  }
  return {
    home,
    host: env.AUTODEV_HOST,
    port: env.AUTODEV_PORT,
    concurrency: env.AUTODEV_CONCURRENCY,
    leaseMs: env.AUTODEV_LEASE_SECONDS * 1000,
    drainMs: env.AUTODEV_DRAIN_SECONDS * 1000,
    defaultTimeoutSeconds: env.AUTODEV_TASK_TIMEOUT_SECONDS ?? 1800,
    retryPolicy: { baseDelayMs: env.AUTODEV_RETRY_BASE_MS, maxDelayMs: env.AUTODEV_RETRY_MAX_MS },
    branchPrefix: env.AUTODEV_BRANCH_PREFIX,
    author: { name: env.AUTODEV_GIT_AUTHOR_NAME, email: env.AUTODEV_GIT_AUTHOR_EMAIL },
    workspacesDir: isAbsolute(workspaces) ? workspaces : resolve(workspaces),
    mirrorsDir: join(home, 'mirrors'),
    dbFile: join(home, 'autodev.db'),
    keyFile: join(home, 'signing-key'),
    keepWorkspaces: env.AUTODEV_KEEP_WORKSPACES === '1' || env.AUTODEV_KEEP_WORKSPACES === 'true',
    mergeTrain: env.AUTODEV_MERGE_TRAIN === 'on',
    breaker: {
      failureThreshold: env.AUTODEV_BREAKER_FAILURES,
      windowMs: env.AUTODEV_BREAKER_WINDOW_SECONDS * 1000,
      openMs: env.AUTODEV_BREAKER_OPEN_SECONDS * 1000,
    },
    rate: { ratePerSecond: env.AUTODEV_PROVIDER_RATE, burst: env.AUTODEV_PROVIDER_BURST },
    routing: {
      ...DEFAULT_ROUTING_POLICY,
      exploration: env.AUTODEV_ROUTING_EXPLORATION,
      windowDays: env.AUTODEV_ROUTING_WINDOW_DAYS,
      cacheMs: env.AUTODEV_ROUTING_CACHE_SECONDS * 1000,
    },
    executor: env.AUTODEV_EXECUTOR === '1' || env.AUTODEV_EXECUTOR === 'true',
    modelGateway: env.AUTODEV_MODEL_GATEWAY === '1' || env.AUTODEV_MODEL_GATEWAY === 'true',
    modelPrices,
    loopThreshold: env.AUTODEV_LOOP_THRESHOLD,
    logLevel: env.AUTODEV_LOG_LEVEL,
    roles,
    providers,
    agentEnv,
    secrets: merged,
    secretValues,
    forges,
    http: {
      requestTimeoutMs: env.AUTODEV_HTTP_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: env.AUTODEV_HTTP_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: env.AUTODEV_HTTP_KEEPALIVE_TIMEOUT_MS,
      maxConnections: env.AUTODEV_HTTP_MAX_CONNECTIONS,
    },
    maxTokenTtlSeconds: parseDuration(env.AUTODEV_MAX_TOKEN_TTL) as number,
    clockSkewSeconds: env.AUTODEV_CLOCK_SKEW_SECONDS,
    oidc,
    webSignIn: loadWebSignIn(env, oidc),
    quotas: parseQuotas(env.AUTODEV_QUOTAS),
    fairShares: {
      weights: parseFairShares(env.AUTODEV_FAIR_SHARES),
      agingMs: env.AUTODEV_PRIORITY_AGING_SECONDS * 1000,
    },
    highPriorityRoles: parseAccessRoles(env.AUTODEV_HIGH_PRIORITY_ROLES, 'AUTODEV_HIGH_PRIORITY_ROLES'),
    retention: { days: env.AUTODEV_RETENTION_DAYS, sweepEveryMs: env.AUTODEV_RETENTION_SWEEP_SECONDS * 1000 },
    auditHoldDays: env.AUTODEV_AUDIT_HOLD_DAYS,
    repoPolicy: {
      allowedHosts: parseAllowedHosts(env.AUTODEV_ALLOWED_REPO_HOSTS),
      localRoots: parseLocalRoots(env.AUTODEV_LOCAL_REPO_ROOTS),
      resolveLocalPath: resolveExisting,
    },
    notifications: loadNotifications(home),
    githubWebhook: {
      secret: merged.AUTODEV_GITHUB_WEBHOOK_SECRET?.trim() ?? '',
      tenant: env.AUTODEV_GITHUB_WEBHOOK_TENANT,
    },
    publicUrl: env.AUTODEV_PUBLIC_URL?.replace(/\/+$/, ''),
    sandbox: {
      setting: env.AUTODEV_SANDBOX,
      bwrap: env.AUTODEV_BWRAP,
      user: { uid: env.AUTODEV_SANDBOX_UID, gid: env.AUTODEV_SANDBOX_GID },
      // the signing key, secrets, database, mirrors and every worktree
      hidden: [home, join(home, 'mirrors'), isAbsolute(workspaces) ? workspaces : resolve(workspaces)],
    },
  };
}

/**
 * A local path as the file system resolves it: symbolic links followed in the longest part of it
 * that exists (the rest, not yet created, is appended as written).
 */
export function resolveExisting(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(resolveExisting(parent), basename(path));
  }
}
