import type { Usage } from '../core/schemas.js';
import { closeAttemptGateway, type LedgerOutcome, openAttemptGateway } from '../gateway/attempts.js';
import type { AttemptRun } from './attempt-steps.js';
import { costOf } from './drivers/pricing.js';
import { type ReviewRunOptions, type ReviewRunResult, runReview } from './review.js';
import type { ProviderConfig } from './run-attempt.js';

export interface MeteredReviewResult extends ReviewRunResult {
  /** The reviewer's session ended over the task's budget: the attempt fails `budget_exceeded` with this message. */
  budgetExceeded?: string;
}

/**
 * The review agent behind the model gateway, like the task's own agent: when the attempt has a
 * gateway and the reviewer's CLI can be proxied, the reviewer gets a session of its own (its
 * credential the only key in its environment), checked against what is left of the task's budget
 * and the tenant's, its calls added to the attempt's ledger (`run.reviewCalls`), a rate limit
 * reported to the reviewer's provider. Without a session (no gateway, a CLI that cannot be
 * proxied) the reviewer talks to its provider as before and its CLI's own count is kept.
 */
export async function runMeteredReview(run: AttemptRun, o: ReviewRunOptions): Promise<MeteredReviewResult> {
  const { ctx } = run;
  const { reviewer } = o;
  const access = ctx.modelGateway;
  const gw =
    access &&
    reviewer &&
    o.bin &&
    openAttemptGateway(access.gateway, {
      attemptId: `${access.attemptId ?? `${ctx.task.id}/${ctx.task.attempts.length}`}/review`,
      driver: reviewer.driver,
      env: { ...ctx.baseEnv, ...reviewer.env },
      maxCostUsd: ctx.task.limits.maxCostUsd,
      spentBeforeUsd: spentSoFar(run),
      price: reviewer.price,
      tenantBudget: access.tenantBudget,
      onRateLimit: access.onRateLimit && ((e) => access.onRateLimit?.(e, reviewer.name)),
      onCall: access.onCall,
      log: (line) => ctx.log(`review: ${line}`),
      traceContext: access.traceContext,
    });
  if (!gw) {
    const reviewed = await runReview(o);
    const usage = cliUsage(reviewed, reviewer);
    addTo(run.reviewUsage, usage);
    return { ...reviewed, usage };
  }
  let ledger: LedgerOutcome | undefined;
  let reviewed: ReviewRunResult | undefined;
  let usage: Partial<Usage> | undefined;
  try {
    const signals = [gw.ended, ...(o.signal ? [o.signal] : [])];
    reviewed = await runReview({ ...o, gateway: gw.pointer, signal: AbortSignal.any(signals) });
  } finally {
    // the credential stops working whatever became of the review; its calls count for the task, or
    // (no call through the gateway) what its CLI printed, as for the task's own agent
    ledger = closeAttemptGateway(gw);
    run.reviewCalls.push(...ledger.calls);
    usage = ledger.usage ?? cliUsage(reviewed, reviewer);
    addTo(run.reviewUsage, usage);
    run.gateway?.session.addSpend(usage?.costUsd ?? 0);
  }
  if (!ledger.message) return { ...reviewed, usage };
  // the session ended itself (budget, loop, far rate limit, key rejected): that is why the review stopped
  const summary = `the review agent's model gateway session ended: ${ledger.message}`;
  ctx.log(`review by ${o.reviewerName} failed: ${summary}`);
  return {
    review: { provider: o.reviewerName, verdict: 'error', summary, comments: [] },
    usage,
    budgetExceeded: ledger.fatalCode === 'budget_exceeded' ? ledger.message : undefined,
  };
}

/** What the task spent in this attempt so far: the agent's session (with earlier reviews), else what the CLIs reported. */
function spentSoFar(run: AttemptRun): number {
  return run.gateway ? run.gateway.session.spentUsd : run.usage.costUsd + run.reviewUsage.costUsd;
}

/** What the reviewer's CLI printed, at the reviewer's own price when its entry has one. */
function cliUsage(
  reviewed: ReviewRunResult | undefined,
  reviewer: ProviderConfig | undefined,
): Partial<Usage> | undefined {
  const usage = reviewed?.usage;
  return usage && reviewer?.price ? priced(usage, reviewer.price) : usage;
}

function priced(usage: Partial<Usage>, price: NonNullable<ProviderConfig['price']>): Partial<Usage> {
  return {
    ...usage,
    costUsd: costOf(
      {
        inputTokens: usage.inputTokens ?? 0,
        outputTokens: usage.outputTokens ?? 0,
        cachedInputTokens: usage.cachedInputTokens,
      },
      price,
    ),
  };
}

function addTo(total: Usage, more: Partial<Usage> | undefined): void {
  if (!more) return;
  total.inputTokens += more.inputTokens ?? 0;
  total.outputTokens += more.outputTokens ?? 0;
  if (more.cachedInputTokens !== undefined)
    total.cachedInputTokens = (total.cachedInputTokens ?? 0) + more.cachedInputTokens;
  total.costUsd = Math.round((total.costUsd + (more.costUsd ?? 0)) * 1e6) / 1e6;
}
