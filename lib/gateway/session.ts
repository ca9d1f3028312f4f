import type { Context } from '@opentelemetry/api';
import type { ModelCall, TokenPrice } from '../core/metering.js';
import type { RefusalKind, RequestInfo, Vendor } from './adapters/types.js';

/**
 * Where a session stands: open, or ended for one of these reasons (`key_rejected`: the provider
 * answered 401 to the real key, which no retry mends).
 */
export type SessionStatus =
  | 'open'
  | 'budget_exceeded'
  | 'loop_detected'
  | 'rate_limited'
  | 'key_rejected'
  | 'closed';

export interface RateLimitEvent {
  provider: Vendor;
  attemptId: string;
  /** The upstream's status: 429, 529 or 503. */
  status: number;
  /** When the limit opens again (ms since epoch), when the headers say. */
  resetAt?: number;
}

export interface TenantBudgetCheck {
  exceeded: boolean;
  message?: string;
}

export interface SessionOptions {
  attemptId: string;
  provider: Vendor;
  /** The vendor's base URL, as its CLI would be given it (`https://api.openai.com/v1`, ...). */
  upstream: string;
  /** The provider key the gateway puts on forwarded requests in place of the session credential. */
  realKey: string;
  limits?: { maxCostUsd?: number };
  /**
   * What the task spent in this attempt before this session opened (the agent's session, for the
   * reviewer's), counted against `limits.maxCostUsd` as this session's own calls are.
   */
  spentBeforeUsd?: number;
  /** A daily tenant budget, checked before each forwarded call like `limits.maxCostUsd`. */
  tenantBudget?: () => TenantBudgetCheck | Promise<TenantBudgetCheck>;
  /** Each model call, when its answer has ended. */
  onCall?: (call: ModelCall) => void;
  /** A 429/529/503 from upstream, at once. */
  onRateLimit?: (event: RateLimitEvent) => void;
  /** The session ended itself (budget, loop, far rate-limit reset, key rejected): the caller stops the agent. */
  onEnd?: (status: SessionStatus, message: string) => void;
  /** Prices every call of this session (a provider entry's `price`); default the gateway's table. */
  price?: TokenPrice;
  /** Same tool call this many times in a row ends the session; default the gateway's. */
  loopThreshold?: number;
  /** A rate-limit reset further off than this ends the session; default the gateway's. */
  farResetMs?: number;
  /** The trace context each model call's span (`chat {model}`) hangs under; default none (no span). */
  traceContext?: () => Context;
}

/** One attempt's access to the gateway: its credential, ledger, spend and guards. */
export class GatewaySession {
  readonly credential: string;
  readonly baseUrl: string;
  readonly calls: ModelCall[] = [];
  private spent = 0;
  private state: SessionStatus = 'open';
  private message: string | undefined;
  private lastToolCalls: string | undefined;
  private lastHistory = -1;
  private repeats = 0;
  private revoked = false;
  private resetAt: number | undefined;

  constructor(
    readonly options: SessionOptions,
    credential: string,
    baseUrl: string,
    readonly loopThreshold: number,
    readonly farResetMs: number,
    private readonly onClose: (s: GatewaySession) => void,
  ) {
    this.credential = credential;
    this.baseUrl = baseUrl;
    this.spent = options.spentBeforeUsd ?? 0;
  }

  get attemptId(): string {
    return this.options.attemptId;
  }
  get provider(): Vendor {
    return this.options.provider;
  }
  get status(): SessionStatus {
    return this.state;
  }
  get endMessage(): string | undefined {
    return this.message;
  }
  /** What the budget check counts: this session's calls and what was spent outside it (`addSpend`). */
  get spentUsd(): number {
    return this.spent;
  }

  /** Spend of the same task outside this session (the reviewer's session), counted against its limit. */
  addSpend(usd: number): void {
    this.spent += usd;
  }

  /** Why a request must be refused now, before anything is forwarded; undefined to go on. */
  async refusal(info: RequestInfo | undefined): Promise<{ kind: RefusalKind; message: string } | undefined> {
    if (this.state !== 'open')
      return {
        kind:
          this.state === 'budget_exceeded' || this.state === 'loop_detected' ? this.state : 'attempt_ended',
        message: this.message ?? `AutoDev ended this attempt (${this.state}).`,
      };
    const max = this.options.limits?.maxCostUsd;
    if (max !== undefined && this.spent >= max)
      return this.endWith(
        'budget_exceeded',
        `AutoDev budget exceeded: this task spent $${this.spent.toFixed(4)} of its $${max} limit (limits.maxCostUsd). Stop now; do not retry.`,
      );
    if (info && this.repeated(info))
      return this.endWith(
        'loop_detected',
        `AutoDev stopped a loop: the same tool call was made ${this.repeats} times in a row. Stop now; do not retry.`,
      );
    const tenant = await this.options.tenantBudget?.();
    if (tenant?.exceeded)
      return this.endWith(
        'budget_exceeded',
        tenant.message ??
          "AutoDev budget exceeded: the tenant's daily budget is spent. Stop now; do not retry.",
      );
    return undefined;
  }

  /** Counts the latest assistant turn's tool calls; a resent request (same history) is not a repeat. */
  private repeated(info: RequestInfo): boolean {
    if (info.historyLength === this.lastHistory && info.toolCalls === this.lastToolCalls) return false;
    if (info.toolCalls !== undefined && info.toolCalls === this.lastToolCalls) this.repeats += 1;
    else this.repeats = info.toolCalls === undefined ? 0 : 1;
    this.lastToolCalls = info.toolCalls;
    this.lastHistory = info.historyLength;
    return this.repeats >= this.loopThreshold;
  }

  private endWith(
    status: 'budget_exceeded' | 'loop_detected',
    message: string,
  ): { kind: RefusalKind; message: string } {
    this.end(status, message);
    return { kind: status, message };
  }

  /** Ends the session: later requests are refused in the vendor's format. */
  end(status: Exclude<SessionStatus, 'open' | 'closed'>, message: string): void {
    if (this.state !== 'open') return;
    this.state = status;
    this.message = message;
    this.options.onEnd?.(status, message);
  }

  record(call: ModelCall): void {
    this.calls.push(call);
    this.spent += call.costUsd;
    this.options.onCall?.(call);
  }

  rateLimited(status: number, resetAt: number | undefined, now: number): void {
    this.options.onRateLimit?.({ provider: this.provider, attemptId: this.attemptId, status, resetAt });
    if (resetAt !== undefined && resetAt - now > this.farResetMs) {
      this.resetAt = resetAt;
      this.end(
        'rate_limited',
        `The provider is rate-limited until ${new Date(resetAt).toISOString()}; AutoDev ended this attempt and will retry after the reset.`,
      );
    }
  }

  /**
   * The provider answered 401 to the real key (invalid or revoked): the session ends, so the agent
   * stops at once instead of retrying for minutes as some CLIs do.
   */
  keyRejected(status: number, upstream: string): void {
    this.end(
      'key_rejected',
      `The provider at ${upstream} rejected the API key AutoDev holds for it (HTTP ${status}): the key is invalid or revoked. Fix the key in the server's configuration (secrets.env, the environment, or Secrets Manager); AutoDev ended this attempt.`,
    );
  }

  /** When the limit that ended the session (`rate_limited`) opens again. */
  get rateLimitResetAt(): number | undefined {
    return this.resetAt;
  }

  /** Revokes the credential: the gateway answers 401 to it from now on. */
  close(): void {
    if (this.revoked) return;
    this.revoked = true;
    if (this.state === 'open') this.state = 'closed';
    this.onClose(this);
  }

  get closed(): boolean {
    return this.revoked;
  }
}
