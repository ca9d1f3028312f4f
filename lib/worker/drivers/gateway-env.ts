import type { DriverInput } from '../../core/ports.js';

type Session = NonNullable<DriverInput['gateway']>;

/**
 * The environment that points a CLI at its model gateway session: every credential variable the
 * CLI reads is blanked (an empty value: the real key from the server's environment never reaches
 * the agent), then `point(session)` sets the base URL and the session credential. Empty without a session.
 */
export function gatewayEnv(
  credentialEnv: readonly string[],
  session: Session | undefined,
  point: (s: Session) => Record<string, string>,
): Record<string, string> {
  if (!session) return {};
  const env: Record<string, string> = {};
  for (const name of credentialEnv) env[name] = '';
  return { ...env, ...point(session) };
}
