import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProviderInfo as ApiProviderInfo, ProviderStatsPage } from '../api/schemas.js';
import { type BreakerMode, breakerMode, type ProviderState, successRate } from '../core/provider-health.js';
import { resolveBinary } from '../worker/agent-process.js';
import type { LocalConfig } from './config.js';

export interface ProviderInfo {
  name: string;
  bin: string;
  path?: string;
  version?: string;
  model?: string;
  /** `present`, `missing`, or `not needed` (a local model). */
  credentials: 'present' | 'missing' | 'not needed';
  credentialEnv: string[];
  breaker: BreakerMode;
  /** Share of recent attempts that succeeded; undefined before the first attempt. */
  successRate?: number;
  recentAttempts: number;
}

const versions = new Map<string, { at: number; version: Promise<string | undefined> }>();

/**
 * `<bin> --version`, first line, with a private HOME; cached for a minute. Calls that arrive while
 * it runs share its answer: a burst of `GET /v1/providers` starts one process per CLI, not one each.
 */
function versionOf(path: string, env: Record<string, string>): Promise<string | undefined> {
  const hit = versions.get(path);
  if (hit && Date.now() - hit.at < 60_000) return hit.version;
  const home = mkdtempSync(join(tmpdir(), 'autodev-version-'));
  const version = new Promise<string | undefined>((resolve) => {
    execFile(path, ['--version'], { env: { ...env, HOME: home }, timeout: 10_000 }, (err, stdout) => {
      rmSync(home, { recursive: true, force: true });
      resolve(err ? undefined : stdout.trim().split('\n')[0]?.slice(0, 80));
    });
  });
  versions.set(path, { at: Date.now(), version });
  return version;
}

/** What the platform knows of each configured provider: installed, credentials, breaker, success rate. */
export async function describeProviders(
  config: LocalConfig,
  states: ProviderState[],
): Promise<ProviderInfo[]> {
  const byName = new Map(states.map((s) => [s.provider, s]));
  const now = Date.now();
  return Promise.all(
    Object.values(config.providers).map(async (p) => {
      const path = resolveBinary(p.bin, config.agentEnv.PATH);
      const state = byName.get(p.name);
      const needed = p.driver.credentialEnv;
      return {
        name: p.name,
        bin: p.bin,
        path,
        version: path ? await versionOf(path, config.agentEnv) : undefined,
        model: p.model,
        credentials:
          needed.length === 0
            ? 'not needed'
            : needed.some((v) => config.agentEnv[v] || p.env[v])
              ? 'present'
              : 'missing',
        credentialEnv: [...needed],
        breaker: state ? breakerMode(state, now, config.breaker) : 'closed',
        successRate: state ? successRate(state) : undefined,
        recentAttempts: state?.recent.length ?? 0,
      } satisfies ProviderInfo;
    }),
  );
}

/** The `autodev providers` table. */
/** A table of providers as the API answers them (on AWS without binary, version or credentials). */
export function formatProviders(list: ApiProviderInfo[]): string {
  const rows = list.map((p) => [
    p.name,
    p.path ? (p.version ?? 'installed') : p.bin ? 'not installed' : '-',
    p.credentials === 'missing' ? `missing (${(p.credentialEnv ?? []).join(' | ')})` : (p.credentials ?? '-'),
    p.breaker,
    p.successRate === undefined ? '-' : `${Math.round(p.successRate * 100)}% of ${p.recentAttempts}`,
    p.path ?? p.bin ?? '-',
  ]);
  const header = ['provider', 'version', 'credentials', 'breaker', 'success', 'binary'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `autodev providers --stats`: per role and provider, what routing reads. */
export function formatProviderStats(page: ProviderStatsPage): string {
  const header = ['role', 'provider', 'attempts', 'success', 'median time', 'median cost'];
  const rows = [...page.items]
    .sort((a, b) => a.role.localeCompare(b.role) || a.provider.localeCompare(b.provider))
    .map((p) => [
      p.role,
      p.provider,
      String(p.attempts),
      p.successRate === null ? '-' : `${Math.round(p.successRate * 100)}% of ${p.succeeded + p.failed}`,
      p.medianMs === null ? '-' : `${(p.medianMs / 1000).toFixed(1)} s`,
      p.medianCostUsd === null ? '-' : `$${p.medianCostUsd.toFixed(4)}`,
    ]);
  if (rows.length === 0) return `no attempts since ${page.since}`;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const table = [header, ...rows].map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd(),
  );
  return [...table, `(attempts since ${page.since}; success counts succeeded and failed attempts only)`].join(
    '\n',
  );
}
