import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { ProviderStateStore } from './provider-health.js';
import { admitProviderSlot, type ProviderLimits, releaseProviderSlot } from './provider-slots.js';
import type { AgentRole } from './roles.js';

/**
 * Concurrency per agent role (`maxConcurrent`) for the distributed executor (Step Functions). The
 * local executor counts its running tasks per role when it picks the next one (fair-share.ts); on
 * AWS each role with a limit is a pool of slots held exactly as a provider's (provider-slots.ts):
 * an attempt takes one of its role's slots at admission, before its provider's, and gives it back
 * when its end is recorded; a slot whose attempt was lost lapses at the attempt's lease expiry. A
 * full role is waited for as a full provider is: the execution parks on the role's waiter queue
 * (`role:<name>`) and a release there wakes it. A pool has no rate and no circuit breaker.
 */

const PREFIX = 'role:';
/** Far above any limit: a role pool never delays a start by rate. */
const UNLIMITED = 1_000_000_000;

/** The waiter queue and slot pool of a role: `role:<name>` (provider names never hold a colon). */
export const roleQueue = (role: string): string => `${PREFIX}${role}`;

/** The role of a waiter queue, or undefined for a provider's. */
export function roleOfQueue(queue: string): string | undefined {
  return queue.startsWith(PREFIX) ? queue.slice(PREFIX.length) : undefined;
}

/** A role's pool as slot limits: `maxConcurrent` at once (unlimited without one), no rate. */
export function rolePoolLimits(role: Pick<AgentRole, 'maxConcurrent'> | undefined): ProviderLimits {
  return { concurrency: role?.maxConcurrent ?? UNLIMITED, ratePerSecond: UNLIMITED, burst: UNLIMITED };
}

export type RoleSlotAdmission = { ok: true } | { ok: false; reason: string };

/**
 * Takes one of the role's slots for attempt `key` (until `holdUntil`); a role without
 * `maxConcurrent` admits without a write. The same key admitted twice is admitted once.
 */
export async function admitRoleSlot(
  pools: ProviderStateStore,
  role: AgentRole,
  key: string,
  now: number,
  holdUntil: number,
): Promise<RoleSlotAdmission> {
  if (role.maxConcurrent === undefined) return { ok: true };
  const a = await admitProviderSlot(pools, roleQueue(role.name), key, now, holdUntil, rolePoolLimits(role));
  return a.ok
    ? { ok: true }
    : { ok: false, reason: `role ${role.name} (all ${role.maxConcurrent} of its maxConcurrent running)` };
}

/** Gives attempt `key`'s slot back to its role's pool (nothing to do for a role without a limit). */
export async function releaseRoleSlot(
  pools: ProviderStateStore,
  role: AgentRole | undefined,
  key: string,
  now: number,
): Promise<boolean> {
  if (role?.maxConcurrent === undefined) return false;
  await releaseProviderSlot(pools, roleQueue(role.name), key, now, rolePoolLimits(role));
  return true;
}

const RoleLimitsConfig = z.record(
  z.string().min(1),
  z.object({ maxConcurrent: z.number().int().min(1).max(10_000) }).strict(),
);

/**
 * The roles with the limits of `text` (JSON, `{"ml": {"maxConcurrent": 2}}`) over their own; an
 * unknown role or a bad value fails with a message naming it (`source`: where the text came from).
 */
export function withRoleLimits(
  roles: Readonly<Record<string, AgentRole>>,
  text: string | undefined,
  source: string,
): Record<string, AgentRole> {
  if (text === undefined || text.trim() === '') return { ...roles };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(`${source}: not JSON.`);
  }
  const parsed = RoleLimitsConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${source}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const out: Record<string, AgentRole> = { ...roles };
  for (const [name, limits] of Object.entries(parsed.data)) {
    const role = roles[name];
    if (!role) {
      throw new ConfigError(`${source}: no agent role "${name}" (roles: ${Object.keys(roles).join(', ')}).`);
    }
    out[name] = { ...role, maxConcurrent: limits.maxConcurrent };
  }
  return out;
}
