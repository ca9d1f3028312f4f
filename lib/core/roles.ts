import { z } from 'zod';
import { ValidationError } from './errors.js';

/** An agent role: what kind of work, which providers in which order, and how much it may use. */
export const AgentRole = z.object({
  name: z.string(),
  description: z.string(),
  preamble: z.string(),
  providers: z.array(z.string()).min(1),
  resources: z.object({ cpu: z.number().positive(), memoryMiB: z.number().int().positive() }),
  timeoutSeconds: z.number().int().positive(),
  maxAttempts: z.number().int().min(1).max(20),
  /** Agent turns per attempt, for CLIs that can cap them. */
  maxTurns: z.number().int().min(1).max(1000).default(50),
  /** Tasks of this role running at once, across tenants (default: no limit but the executor's). */
  maxConcurrent: z.number().int().min(1).max(10_000).optional(),
  gates: z.array(
    z.object({ name: z.string(), run: z.string(), timeoutSeconds: z.number().int().positive() }),
  ),
});
export type AgentRole = z.infer<typeof AgentRole>;

const ORDER = ['claude', 'codex', 'gemini', 'cursor', 'opencode', 'aider'];

function role(
  name: string,
  description: string,
  preamble: string,
  extra: Partial<Omit<AgentRole, 'name' | 'description' | 'preamble'>> = {},
): AgentRole {
  return {
    name,
    description,
    preamble,
    providers: ORDER,
    resources: { cpu: 1, memoryMiB: 2048 },
    timeoutSeconds: 1800,
    maxAttempts: 3,
    maxTurns: 50,
    gates: [],
    ...extra,
  };
}

/** The seven built-in roles of DESIGN.md. A config file may override or add roles. */
export const BUILT_IN_ROLES: Record<string, AgentRole> = Object.fromEntries(
  [
    role(
      'backend',
      'Server-side code: APIs, services, persistence.',
      'You are a senior backend engineer. Make the smallest correct change, keep the public API stable unless asked, and add or update tests for what you change.',
    ),
    role(
      'frontend',
      'User interfaces: components, styles, accessibility.',
      'You are a senior frontend engineer. Keep components accessible (labels, roles, keyboard use), follow the existing design system, and add or update component tests.',
    ),
    role(
      'data',
      'Data pipelines, SQL, schemas and migrations.',
      'You are a senior data engineer. Keep migrations reversible and idempotent, never drop data without being asked, and document schema changes.',
      { resources: { cpu: 2, memoryMiB: 4096 } },
    ),
    role(
      'ml',
      'Machine learning code: training, evaluation, inference.',
      'You are a senior machine learning engineer. Keep experiments reproducible (seeds, pinned versions), never download large weights in tests, and report the metrics you changed.',
      { resources: { cpu: 2, memoryMiB: 8192 }, timeoutSeconds: 3600 },
    ),
    role(
      'devops',
      'Build, CI, infrastructure as code, deployment.',
      'You are a senior DevOps engineer. Prefer declarative configuration, least privilege and pinned versions; never put secrets in files.',
    ),
    role(
      'security',
      'Security fixes and reviews.',
      'You are a senior application security engineer. Fix the root cause, add a regression test, and never weaken existing checks. Do not print secrets.',
      { maxAttempts: 2 },
    ),
    role(
      'docs',
      'Documentation: READMEs, guides, API references.',
      'You are a senior technical writer. Keep documentation true to the code, concise and example-driven.',
      { resources: { cpu: 0.5, memoryMiB: 1024 }, timeoutSeconds: 900 },
    ),
  ].map((r) => [r.name, r]),
);

export const DEFAULT_ROLE = 'backend';

export function resolveRole(roles: Record<string, AgentRole>, name: string | undefined): AgentRole {
  const found = roles[name ?? DEFAULT_ROLE];
  if (!found) {
    throw new ValidationError(
      `Unknown agent role "${name}". Known roles: ${Object.keys(roles).join(', ')}.`,
      [{ field: 'role', message: 'unknown role' }],
    );
  }
  return found;
}
