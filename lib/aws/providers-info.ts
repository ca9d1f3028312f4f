import { breakerMode, DEFAULT_BREAKER, type ProviderState, successRate } from '../core/provider-health.js';

/**
 * `GET /v1/providers` on AWS: each provider the worker image carries, with its circuit breaker and
 * recent success rate from the shared provider health. Whether its key is set is not reported: the
 * API function has no access to the provider secret, on purpose.
 */
export function describeAwsProviders(names: readonly string[], states: ProviderState[], now: number) {
  const byName = new Map(states.map((s) => [s.provider, s]));
  return names.map((name) => {
    const state = byName.get(name);
    return {
      name,
      breaker: state ? breakerMode(state, now, DEFAULT_BREAKER) : 'closed',
      successRate: state ? successRate(state) : undefined,
      recentAttempts: state?.recent.length ?? 0,
    };
  });
}
