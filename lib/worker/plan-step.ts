import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { extractPlan, isPlanning, MAX_PLAN_BYTES, PLAN_FILE } from '../core/epics.js';
import type { AttemptStep } from './attempt-steps.js';

/**
 * plan: an epic's planning attempt ends after its agent, with the plan it gave (its answer, or the
 * file PLAN_FILE it wrote in the worktree) and no commit or push. The record step checks the plan.
 */
export const planStep: AttemptStep = async (run) => {
  const { ctx } = run;
  if (!isPlanning(ctx.task)) return undefined;
  const file = await readPlanFile(join(run.ws.dir, PLAN_FILE));
  const plan = extractPlan(run.summary, file);
  ctx.log(
    plan === undefined
      ? 'planning agent: no plan in its answer or in the plan file'
      : `planning agent: a plan${file === undefined ? '' : ` in ${PLAN_FILE}`}; nothing is committed`,
  );
  return {
    ok: true,
    usage: run.usage,
    sessionId: run.sessionId,
    startLatencyMs: run.startLatencyMs,
    changedFiles: [],
    summary: run.summary,
    plan,
  };
};

/** The plan file the agent wrote: a regular file (never through a link), at most MAX_PLAN_BYTES. */
export async function readPlanFile(path: string): Promise<string | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > MAX_PLAN_BYTES) return undefined;
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
