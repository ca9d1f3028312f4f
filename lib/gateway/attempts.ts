import type { ProviderErrorClass } from '../core/errors.js';
import { type ModelCall, sumCalls } from '../core/metering.js';
import type { Usage } from '../core/schemas.js';
import type { Vendor } from './adapters/types.js';
import type { ModelGateway } from './server.js';
import type { GatewaySession, RateLimitEvent, SessionOptions, TenantBudgetCheck } from './session.js';

/** Where a CLI's calls go through the gateway: the vendor, its upstream and the real key. */
export interface GatewayRoute {
  vendor: Vendor;
  upstream: string;
  realKey: string;
}

interface RouteRule {
  vendor: Vendor;
  /** Variables holding an API key the gateway can swap in, in order of preference. */
  keys: readonly string[];
  /** Variables that select another way in (OAuth, a bearer token, Bedrock, Vertex): not proxied. */
  otherAuth: readonly string[];
  /** The variables an operator sets to move the vendor's endpoint (a proxy, a local server), first set wins. */
  baseUrlVars: readonly string[];
  defaultUpstream: string;
}

/** The CLIs the gateway fronts, by driver. Cursor has no base URL; Aider is not wired yet. */
const RULES: Readonly<Record<string, RouteRule>> = {
  claude: {
    vendor: 'anthropic',
    keys: ['ANTHROPIC_API_KEY'],
    otherAuth: ['ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN', 'CLAUDE_CODE_USE_BEDROCK'],
    baseUrlVars: ['ANTHROPIC_BASE_URL'],
    defaultUpstream: 'https://api.anthropic.com',
  },
  codex: {
    vendor: 'openai',
    keys: ['CODEX_API_KEY', 'OPENAI_API_KEY'],
    otherAuth: [],
    baseUrlVars: ['OPENAI_BASE_URL'],
    defaultUpstream: 'https://api.openai.com/v1',
  },
  // opencode through the gateway speaks Chat Completions (an OpenAI-compatible provider) to OpenAI
  // or to the server OPENAI_BASE_URL names; its local-server mode without a key keeps the direct path
  opencode: {
    vendor: 'openai',
    keys: ['OPENAI_API_KEY'],
    otherAuth: [],
    baseUrlVars: ['OPENAI_BASE_URL'],
    defaultUpstream: 'https://api.openai.com/v1',
  },
  gemini: {
    vendor: 'gemini',
    keys: ['GEMINI_API_KEY', 'GOOGLE_API_KEY'],
    otherAuth: ['GOOGLE_GENAI_USE_VERTEXAI'],
    baseUrlVars: ['GOOGLE_GEMINI_BASE_URL'],
    defaultUpstream: 'https://generativelanguage.googleapis.com',
  },
};

/**
 * The gateway route of a driver given the environment its CLI would get (server environment and
 * the provider's own `env`), or undefined when its calls cannot be proxied: no API key, another
 * auth path, or a driver the gateway does not front (including local-model modes without a key).
 */
export function gatewayRoute(
  driver: { name: string; credentialEnv: readonly string[] },
  env: Readonly<Record<string, string | undefined>>,
): GatewayRoute | undefined {
  const rule = RULES[driver.name];
  if (!rule) return undefined;
  if (rule.otherAuth.some((v) => env[v])) return undefined;
  const keyVar = rule.keys.find((v) => driver.credentialEnv.includes(v) && env[v]);
  const realKey = keyVar ? env[keyVar] : undefined;
  if (!realKey) return undefined;
  const upstream = rule.baseUrlVars.map((v) => env[v]).find(Boolean) || rule.defaultUpstream;
  return { vendor: rule.vendor, upstream, realKey };
}

/** One attempt's session as the executor holds it. */
export interface AttemptGateway {
  /** What the driver points the CLI at. */
  pointer: { baseUrl: string; credential: string };
  session: GatewaySession;
  /** Aborted when the session ends itself (budget, loop, far rate-limit reset, key rejected): stop the agent. */
  ended: AbortSignal;
}

export interface OpenAttemptOptions {
  attemptId: string;
  driver: { name: string; credentialEnv: readonly string[] };
  env: Readonly<Record<string, string | undefined>>;
  maxCostUsd?: number;
  /** What the task spent in this attempt before this session (see SessionOptions.spentBeforeUsd). */
  spentBeforeUsd?: number;
  /** The provider entry's price (USD per million tokens), when it sets one. */
  price?: { input: number; output: number; cachedInput?: number };
  tenantBudget?: () => TenantBudgetCheck | Promise<TenantBudgetCheck>;
  /** A 429/529/503 from upstream, at once (for the provider's circuit breaker). */
  onRateLimit?: (event: RateLimitEvent) => void;
  /** Each model call as its answer ends (after it is logged). */
  onCall?: (call: ModelCall) => void;
  log: (line: string) => void;
  /** The trace context each model call's span hangs under. */
  traceContext?: SessionOptions['traceContext'];
}

/** Opens a session for an attempt whose CLI can be proxied; undefined keeps today's direct path. */
export function openAttemptGateway(gateway: ModelGateway, o: OpenAttemptOptions): AttemptGateway | undefined {
  const route = gatewayRoute(o.driver, o.env);
  if (!route) return undefined;
  const ended = new AbortController();
  const session = gateway.openSession({
    attemptId: o.attemptId,
    provider: route.vendor,
    upstream: route.upstream,
    realKey: route.realKey,
    limits: { maxCostUsd: o.maxCostUsd },
    spentBeforeUsd: o.spentBeforeUsd,
    price: o.price && { input: o.price.input, output: o.price.output, cacheRead: o.price.cachedInput },
    tenantBudget: o.tenantBudget,
    traceContext: o.traceContext,
    onCall: (c) => {
      o.log(
        `model call: ${c.model} ${c.status || 'no answer'}, ${c.inputTokens} in (${c.cachedInputTokens} cached) / ${c.outputTokens} out, $${c.costUsd.toFixed(6)}, ${c.durationMs} ms`,
      );
      o.onCall?.(c);
    },
    onRateLimit: (e) => {
      o.log(
        `model gateway: ${e.provider} answered ${e.status}${e.resetAt ? `, limit resets at ${new Date(e.resetAt).toISOString()}` : ''}`,
      );
      o.onRateLimit?.(e);
    },
    onEnd: (status, message) => {
      o.log(`model gateway: ${status}: ${message}`);
      ended.abort();
    },
  });
  o.log(
    `model gateway: ${o.driver.name} calls go through ${session.baseUrl} to ${new URL(route.upstream).origin}`,
  );
  return {
    pointer: { baseUrl: session.baseUrl, credential: session.credential },
    session,
    ended: ended.signal,
  };
}

/** What an attempt's report becomes once its session's ledger and end are known. */
export interface LedgerOutcome {
  calls: ModelCall[];
  /** The sum of the ledger; undefined when no call went through the gateway (the CLI's own count stands). */
  usage?: Usage;
  /** `budget_exceeded` or `loop_detected`: the task fails with this code. */
  fatalCode?: 'budget_exceeded' | 'loop_detected';
  /** The session ended on a rate limit: retry no sooner than this. */
  retryAfterMs?: number;
  /** The session ended because the provider rejected the key (401): the attempt failed `auth`. */
  errorClass?: 'auth';
  message?: string;
}

/** Closes the session (its credential stops working) and reads its ledger and end. */
export function closeAttemptGateway(gw: AttemptGateway, now = Date.now()): LedgerOutcome {
  const { session } = gw;
  const status = session.status;
  session.close();
  const calls = [...session.calls];
  const out: LedgerOutcome = { calls };
  if (calls.length > 0) {
    const sum = sumCalls(calls);
    out.usage = { ...sum, costUsd: Math.round(sum.costUsd * 1e6) / 1e6 };
  }
  if (status === 'budget_exceeded' || status === 'loop_detected') {
    out.fatalCode = status;
    out.message = session.endMessage;
  } else if (status === 'rate_limited') {
    out.retryAfterMs = Math.max(0, (session.rateLimitResetAt ?? now) - now);
    out.message = session.endMessage;
  } else if (status === 'key_rejected') {
    out.errorClass = 'auth';
    out.message = session.endMessage;
  }
  return out;
}

/** What an attempt reports, as its gateway session's ledger has it. */
export interface LedgeredReport {
  ok: boolean;
  errorClass?: ProviderErrorClass;
  message?: string;
  usage: Usage;
  fatalCode?: string;
  calls?: ModelCall[];
  retryAfterMs?: number;
}

/**
 * An attempt's report with its gateway session's ledger: the usage is the ledger's sum (when any
 * call went through), and a session that ended itself decides the outcome.
 */
export function applyLedger<R extends LedgeredReport>(report: R, ledger: LedgerOutcome): R {
  const out: R = { ...report, calls: ledger.calls };
  if (ledger.usage) out.usage = ledger.usage;
  if (ledger.fatalCode)
    return {
      ...out,
      ok: false,
      errorClass: ledger.fatalCode === 'budget_exceeded' ? 'budget' : undefined,
      fatalCode: ledger.fatalCode,
      message: ledger.message,
    };
  if (ledger.retryAfterMs !== undefined)
    return {
      ...out,
      ok: false,
      errorClass: 'rate_limit',
      retryAfterMs: ledger.retryAfterMs,
      message: ledger.message,
    };
  if (ledger.errorClass) return { ...out, ok: false, errorClass: ledger.errorClass, message: ledger.message };
  return out;
}
