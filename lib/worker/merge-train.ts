import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import {
  type ConflictedFile,
  conflictKind,
  conflictPrompt,
  conflictRegions,
  landingBackoffMs,
  MAX_LANDING_TRIES,
  type TrainMode,
} from '../core/merge-train.js';
import { withSpan } from '../telemetry/tracing.js';
import type { AttemptRun } from './attempt-steps.js';
import { forgeEntryFor } from './forge/resolve.js';
import type { AttemptContext, AttemptReport } from './run-attempt.js';
import { TrainMovedError, type Workspace } from './workspace.js';

/**
 * The merge train on the worker's side (the rules are lib/core/merge-train.ts): before the push, the
 * change is rebased onto what landed since it started, its gates run again, and a conflict is given
 * to the task's agent for one round. The same steps run in the local executor and the Fargate worker.
 */

/** What the train uses of the attempt's steps (attempt-steps.ts hands them in). */
export interface TrainDeps {
  /** The task's agent again with `prompt`; a report when its run failed. */
  conflictRound(run: AttemptRun, prompt: string): Promise<AttemptReport | undefined>;
  /** `.autodev.yml` read again and its gates run (with repair rounds); a report when they end the attempt. */
  gates(run: AttemptRun): Promise<AttemptReport | undefined>;
  /** The secret scan of the change as it is now. */
  scan(run: AttemptRun): Promise<AttemptReport | undefined>;
  /** The attempt's failure with `error.code: merge_conflict`. */
  conflict(run: AttemptRun, message: string): AttemptReport;
  /** The attempt was stopped (cancelled, or its lease lost). */
  stopped(run: AttemptRun, message: string): AttemptReport;
}

/** With a forge, pull requests land on the base branch; without one, the platform's train branch when it keeps one. */
export function trainModeOf(ctx: Pick<AttemptContext, 'task' | 'forges' | 'mergeTrain'>): TrainMode {
  if (ctx.forges && forgeEntryFor(ctx.task.repo, ctx.forges)) return 'forge';
  return ctx.mergeTrain ? 'train' : 'off';
}

/** Where landed work is, in words, for logs and the conflict prompt. */
function landing(ws: Workspace): string {
  return ws.train ? `the merge train (${ws.train.branch})` : `${ws.baseBranch}`;
}

/**
 * merge train, before the scan: with a forge, the base branch is read from the remote, and when a
 * pull request (or anyone) moved it since the change started, the change is put on top of it. Without
 * a forge nothing is read here: the push's lease on the train branch tells whether it moved.
 */
export async function catchUpBeforePush(
  run: AttemptRun,
  deps: TrainDeps,
): Promise<AttemptReport | undefined> {
  const { ws } = run;
  if (trainModeOf(run.ctx) !== 'forge' || !run.committed) return undefined;
  const tip = await run.ctx.workspaces.latestTip(ws);
  if (tip.onto === ws.baseCommit) return undefined;
  return catchUp(run, tip.onto, deps);
}

/**
 * push: the branch (and, without a forge, the train branch, atomically); when the train moved
 * meanwhile, the change is put on top of it, gated and scanned again, and pushed again.
 */
export async function pushOnTrain(
  run: AttemptRun,
  deps: TrainDeps,
): Promise<{ pushed: { replaced?: string; rebasedOnto?: string } } | { report: AttemptReport }> {
  const { ctx, ws } = run;
  for (let tries = 1; ; tries++) {
    if (ws.train && run.gateLoop && !run.gateLoop.ok) {
      // ready means gated: a change whose gates fail is pushed for a draft, never put on the train
      ctx.log(`merge train: the quality gates fail, so ${ws.train.branch} is not advanced to this change`);
      ws.train = undefined;
    }
    try {
      const pushed = await withSpan('push', () => ctx.workspaces.push(ws));
      if (ws.train) ctx.log(`merge train: ${ws.train.branch} advanced to this change`);
      return { pushed };
    } catch (err) {
      if (!(err instanceof TrainMovedError) || !ws.train) throw err;
      if (tries >= MAX_LANDING_TRIES) {
        return {
          report: deps.conflict(
            run,
            `The merge train ${ws.train.branch} moved ${tries} times while this change was being put on top of it; nothing was pushed. Retry the task.`,
          ),
        };
      }
      await new Promise((r) => setTimeout(r, landingBackoffMs(tries)));
      const tip = await ctx.workspaces.latestTip(ws);
      ws.train.lease = tip.lease;
      if (tip.onto !== ws.baseCommit) {
        const report = (await catchUp(run, tip.onto, deps)) ?? (await deps.scan(run));
        if (report) return { report };
      }
      if (run.signal.aborted || (ctx.confirmOwnership && !(await ctx.confirmOwnership()))) {
        return { report: deps.stopped(run, 'the attempt was stopped before its push') };
      }
    }
  }
}

/**
 * The change rebased onto `onto`; on a conflict, one round of the task's agent with the conflict in
 * its prompt; then the gates again. A report when the attempt ends here (merge_conflict, a failed
 * agent or gates), undefined when the change is on top of `onto` and gated.
 */
async function catchUp(run: AttemptRun, onto: string, deps: TrainDeps): Promise<AttemptReport | undefined> {
  const { ctx, ws } = run;
  const where = landing(ws);
  ctx.log(`merge train: ${where} moved to ${onto.slice(0, 12)} since this change started; rebasing onto it`);
  let rebased = await ctx.workspaces.rebaseOnto(ws, onto);
  if (!rebased.ok) {
    const paths = rebased.conflicts.map((c) => c.path);
    if (run.conflictRounds >= 1) {
      await ctx.workspaces.abortRebase(ws);
      return deps.conflict(
        run,
        `The change conflicts with work that landed on ${where} (${paths.join(', ')}) after its conflict round; nothing was pushed.`,
      );
    }
    run.conflictRounds++;
    ctx.log(`merge train: conflict in ${paths.join(', ')}; the agent gets it for one round`);
    const files = describeConflicts(ws, rebased.conflicts);
    const failed = await deps.conflictRound(run, conflictPrompt(ctx.task.prompt, where, files));
    if (failed) {
      await ctx.workspaces.abortRebase(ws);
      return failed;
    }
    const resolved = await ctx.workspaces.continueRebase(ws, onto, paths);
    if (!resolved.ok) {
      await ctx.workspaces.abortRebase(ws);
      ctx.log(`merge train: the conflict round did not resolve the conflict: ${resolved.reason}`);
      return deps.conflict(
        run,
        `The change conflicts with work that landed on ${where}, and the conflict round did not resolve it (${resolved.reason}); nothing was pushed.`,
      );
    }
    ctx.log(`merge train: the conflict round resolved ${paths.join(', ')}`);
    rebased = resolved;
  }
  if (run.committed) run.committed = { ...run.committed, commit: rebased.head };
  ctx.log(`merge train: rebased onto ${onto.slice(0, 12)}; running the quality gates again`);
  const gated = await deps.gates(run);
  if (gated) return gated;
  const amended = await ctx.workspaces.amend(ws);
  if (amended && run.committed) run.committed = { ...run.committed, commit: amended };
  return undefined;
}

/** The conflicted files for the prompt (see describeConflict). */
export function describeConflicts(
  ws: Pick<Workspace, 'dir'>,
  conflicts: readonly { path: string; code: string }[],
): ConflictedFile[] {
  return conflicts.map((c) => describeConflict(ws, c.path, c.code));
}

/**
 * A conflicted file for the prompt: its conflict regions, read only when the path is a regular file
 * inside the worktree (a link the agent made never makes the server read what it points at).
 */
function describeConflict(ws: Pick<Workspace, 'dir'>, path: string, code: string): ConflictedFile {
  const kind = conflictKind(code);
  try {
    const file = join(ws.dir, path);
    const real = realpathSync(file);
    const root = realpathSync(ws.dir);
    if (!real.startsWith(root + sep) || !lstatSync(file).isFile()) return { path, kind, regions: '' };
    return { path, kind, regions: conflictRegions(readFileSync(real, 'utf8')) };
  } catch {
    return { path, kind, regions: '' };
  }
}
