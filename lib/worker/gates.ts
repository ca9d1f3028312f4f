import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../core/errors.js';
import { describeIssues } from '../core/schemas.js';
import { type AgentProcessOptions, runAgentProcess } from './agent-process.js';

/** The file in a repository's root that configures AutoDev for it. */
export const AUTODEV_FILE = '.autodev.yml';

export const GateSpec = z
  .object({
    /** Shown in logs and in the pull request: `test`, `lint`. */
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[\w .:-]+$/, 'letters, digits, space, ".", ":", "_" and "-" only'),
    /** A shell command run in the repository's root (`/bin/sh -c`). */
    run: z.string().trim().min(1).max(4000),
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(3 * 3600)
      .default(600),
  })
  .strict();
export type GateSpec = z.output<typeof GateSpec>;

export const AutodevFile = z
  .object({
    gates: z.array(GateSpec).max(20).default([]),
    /** How many times the agent is given the failures back to fix them. */
    repairRounds: z.number().int().min(0).max(5).default(1),
    /** When gates still fail after the repairs: open the pull request as a draft (true) or fail the attempt (false). */
    draftOnFailure: z.boolean().default(true),
    /**
     * A review agent: after the gates pass, this provider's CLI reviews the change; with `rounds: 1`
     * a request for changes sends the task back to its own provider once. Absent: no review.
     */
    review: z
      .object({
        provider: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[a-z0-9][a-z0-9._-]*$/, 'a provider name'),
        rounds: z.number().int().min(0).max(1).default(0),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((f) => new Set(f.gates.map((g) => g.name)).size === f.gates.length, 'gate names must be unique');
export type AutodevConfig = z.output<typeof AutodevFile>;

export const DEFAULT_AUTODEV_CONFIG: AutodevConfig = { gates: [], repairRounds: 1, draftOnFailure: true };

/**
 * Reads and validates `.autodev.yml` in the worktree; the defaults (no gates) when there is none.
 * Throws ValidationError naming the bad fields when the file is invalid.
 */
export function readAutodevConfig(workdir: string): AutodevConfig {
  const file = join(workdir, AUTODEV_FILE);
  if (!existsSync(file)) return { ...DEFAULT_AUTODEV_CONFIG };
  return parseAutodevConfig(readFileSync(file, 'utf8'));
}

export function parseAutodevConfig(text: string): AutodevConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ValidationError(`${AUTODEV_FILE} is not valid YAML: ${(err as Error).message}`);
  }
  const parsed = AutodevFile.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    throw new ValidationError(
      `${AUTODEV_FILE} is invalid: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return parsed.data;
}

export interface GateResult {
  name: string;
  ok: boolean;
  /** null when the command was killed. */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** The end of what the command printed (stdout and stderr together), trimmed. */
  output: string;
}

export interface RunGatesOptions {
  /** Environment of the commands (PATH, HOME...). The server's own secrets do not belong here. */
  env: Record<string, string>;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Characters of output kept per gate. Default 4000. */
  outputTailChars?: number;
  /** Time between SIGTERM and SIGKILL of a gate that ran out of time. Default 2000 ms. */
  killGraceMs?: number;
  /** The sandbox the commands run in, as the agent's (absent: unconfined). */
  sandbox?: AgentProcessOptions['sandbox'];
}

/**
 * Runs each gate in the worktree, one after the other, each as `/bin/sh -c` in its own process group
 * (in the sandbox when one is given) that is killed when its time limit passes. Every gate runs, so that all failures are known at once.
 */
export async function runGates(
  workdir: string,
  gates: readonly GateSpec[],
  opts: RunGatesOptions,
): Promise<GateResult[]> {
  const results: GateResult[] = [];
  for (const gate of gates) {
    if (opts.signal?.aborted) break;
    const started = Date.now();
    opts.log?.(`gate ${gate.name}: ${gate.run}`);
    const out = await runAgentProcess({
      bin: '/bin/sh',
      // one stream, in the order things were printed
      args: ['-c', `exec 2>&1\n${gate.run}`],
      cwd: workdir,
      env: opts.env,
      limits: { timeoutMs: gate.timeoutSeconds * 1000, killGraceMs: opts.killGraceMs ?? 2000 },
      signal: opts.signal,
      maxOutputBytes: 1024 * 1024,
      sandbox: opts.sandbox,
    });
    const ok = !out.timedOut && out.exitCode === 0;
    const result: GateResult = {
      name: gate.name,
      ok,
      exitCode: out.exitCode,
      timedOut: out.timedOut,
      durationMs: Date.now() - started,
      output: tail(out.stdout + out.stderr, opts.outputTailChars ?? 4000),
    };
    opts.log?.(
      `gate ${gate.name}: ${ok ? 'passed' : out.timedOut ? `ran past ${gate.timeoutSeconds} s and was killed` : `failed with exit code ${out.exitCode}`} in ${result.durationMs} ms`,
    );
    results.push(result);
  }
  return results;
}

/** The last `max` characters of `text`, from a line start where possible, without trailing blank space. */
export function tail(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal colour codes are stripped
  const clean = text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '').trimEnd();
  if (clean.length <= max) return clean;
  const cut = clean.slice(clean.length - max);
  const nl = cut.indexOf('\n');
  const fromLine = nl >= 0 && nl < max / 4 ? cut.slice(nl + 1) : cut;
  return `…\n${fromLine}`;
}

/** Characters of failure output given back to the agent, over all failing gates. */
const REPAIR_OUTPUT_BUDGET = 12_000;

/** The prompt for a repair round: the task, then each failing gate with the end of its output. */
export function repairPrompt(taskPrompt: string, failures: readonly GateResult[]): string {
  const failing = failures.filter((f) => !f.ok);
  const per = Math.max(500, Math.floor(REPAIR_OUTPUT_BUDGET / Math.max(1, failing.length)));
  const sections = failing.map((f) => {
    const how = f.timedOut ? 'ran out of time and was stopped' : `failed with exit code ${f.exitCode}`;
    const output = tail(f.output, per);
    const fence = fenceFor(output);
    return `### ${f.name} ${how}\n\n${fence}text\n${output || '(no output)'}\n${fence}`;
  });
  return [
    "You worked on the task below, and some of the repository's quality checks now fail.",
    'Fix the cause of each failure in the code. Do not weaken, skip or delete the checks or their tests.',
    '',
    '## The task',
    '',
    taskPrompt.trim(),
    '',
    '## Failing checks',
    '',
    sections.join('\n\n'),
  ].join('\n');
}

/** A code fence longer than any run of backticks in `text`. */
export function fenceFor(text: string): string {
  const longest = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  return '`'.repeat(Math.max(3, longest + 1));
}

export interface GateLoopOptions extends RunGatesOptions {
  workdir: string;
  config: AutodevConfig;
  taskPrompt: string;
  /** Runs the agent again in the same worktree with the repair prompt. */
  repair: (prompt: string, round: number) => Promise<void>;
}

export interface GateLoopResult {
  /** True when every gate passed at the end (or there are none). */
  ok: boolean;
  /** The results of the last run of the gates. */
  results: GateResult[];
  /** Repair rounds that were run. */
  rounds: number;
}

/**
 * Gates, then up to `repairRounds` rounds of: the agent given the failures, the gates again.
 * The caller decides from `ok` and `config.draftOnFailure` what becomes of the attempt.
 */
export async function runGatesWithRepairs(opts: GateLoopOptions): Promise<GateLoopResult> {
  const { config } = opts;
  let results = await runGates(opts.workdir, config.gates, opts);
  let rounds = 0;
  while (results.some((r) => !r.ok) && rounds < config.repairRounds && !opts.signal?.aborted) {
    rounds++;
    opts.log?.(`repair round ${rounds} of ${config.repairRounds}`);
    await opts.repair(repairPrompt(opts.taskPrompt, results), rounds);
    results = await runGates(opts.workdir, config.gates, opts);
  }
  return { ok: results.every((r) => r.ok), results, rounds };
}
