/**
 * The merge train of one repository: tasks on the same repository and base branch run in parallel,
 * each on its own branch; before a task pushes, its change is put on top of what landed meanwhile
 * (rebased), its gates run again, and a conflict goes back to its agent for one round. Pure: the
 * decisions and the conflict prompt; the git side is lib/worker/merge-train.ts.
 *
 * What "landed" means:
 * - with a forge (the repository's host is a GitHub or GitLab forge): a pull request merged into the
 *   base branch; the train's tip is the base branch, fetched right before the push;
 * - without a forge, when the platform keeps a train (`AUTODEV_MERGE_TRAIN=on`; off by default, as
 *   it puts the earlier tasks' work under each task branch): a task whose branch was pushed with its
 *   gates passing is ready, and the platform
 *   advances the train branch `<prefix>train/<base>` to it in the same atomic push. The next task starts
 *   from that branch and is rebased onto it when it moved meanwhile; each task's branch carries the
 *   tasks that landed before it, in order. Merging the train branch (or any task branch) into the
 *   base lands them; a base that moved past the train starts a new train from the base.
 */

/** The `error.code` of a task whose change still conflicts after its conflict round. */
export const MERGE_CONFLICT = 'merge_conflict';

/** Pushes of one change before it gives up (each after the train moved again under it). */
export const MAX_LANDING_TRIES = 10;

/**
 * How long to wait before catching up with a train that moved under a push: a few tasks landing at
 * once then take turns instead of refusing each other again. Grows with the tries, with jitter.
 */
export function landingBackoffMs(tries: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(2_000, 100 * 2 ** Math.min(tries, 5)));
}

/**
 * Where a task's change goes onto: the base branch (a forge merges), the platform's train branch
 * (without a forge, when the platform keeps a train: `AUTODEV_MERGE_TRAIN=on`), or nothing is
 * caught up (without a forge, by default: each task branch is one commit on the base, as it started).
 */
export type TrainMode = 'forge' | 'train' | 'off';

/** The train branch of a base branch without a forge: `autodev/train/main`. */
export function trainBranchFor(branchPrefix: string, baseBranch: string): string {
  return `${branchPrefix}train/${baseBranch}`;
}

/**
 * The commit a task's change goes onto. The train branch when it carries the base (it is ahead of
 * it, or level); the base when the train is absent or the base moved on without it (merged, or
 * changed by people): a new train starts there.
 */
export function trainTip(base: string, train: string | undefined, trainHasBase: boolean): string {
  return train && trainHasBase ? train : base;
}

/** One conflicted file as the conflict round's prompt shows it. */
export interface ConflictedFile {
  path: string;
  /** How git saw it: `both modified`, `deleted by them`, ... */
  kind: string;
  /** The conflict regions with a little context (empty for files without markers). */
  regions: string;
}

const MARKER = /^(<{7}|\|{7}|={7}|>{7})(\s|$)/;

/** Whether text still holds a conflict marker line (`<<<<<<< `, `|||||||`, `=======`, `>>>>>>> `). */
export function hasConflictMarkers(text: string): boolean {
  return text.split('\n').some((l) => MARKER.test(l));
}

/**
 * The conflict regions of a file with markers: each `<<<<<<<` to `>>>>>>>` block with `context`
 * lines before and after, numbered as in the file.
 */
export function conflictRegions(text: string, context = 3): string {
  const lines = text.split('\n');
  const blocks: [number, number][] = [];
  let start = -1;
  lines.forEach((l, i) => {
    if (l.startsWith('<<<<<<<')) start = i;
    else if (l.startsWith('>>>>>>>') && start >= 0) {
      blocks.push([Math.max(0, start - context), Math.min(lines.length - 1, i + context)]);
      start = -1;
    }
  });
  const merged: [number, number][] = [];
  for (const b of blocks) {
    const last = merged.at(-1);
    if (last && b[0] <= last[1] + 1) last[1] = Math.max(last[1], b[1]);
    else merged.push([...b]);
  }
  const width = String(lines.length).length;
  return merged
    .map(([from, to]) =>
      lines
        .slice(from, to + 1)
        .map((l, k) => `${String(from + k + 1).padStart(width)}| ${l}`)
        .join('\n'),
    )
    .join('\n…\n');
}

/** Characters of conflict regions given to the agent, over all files. */
const CONFLICT_BUDGET = 12_000;

/** The prompt of the conflict round: the task, what happened, then each conflicted file and its regions. */
export function conflictPrompt(taskPrompt: string, onto: string, files: readonly ConflictedFile[]): string {
  const per = Math.max(800, Math.floor(CONFLICT_BUDGET / Math.max(1, files.length)));
  const sections = files.map((f) => {
    const body = f.regions.length > per ? `${f.regions.slice(0, per)}\n…` : f.regions;
    const fence = '`'.repeat(Math.max(3, ...Array.from(body.matchAll(/`+/g), (m) => m[0].length + 1)));
    return body
      ? `### ${f.path} (${f.kind})\n\n${fence}text\n${body}\n${fence}`
      : `### ${f.path} (${f.kind})\n\nNo conflict markers: decide whether the file stays, goes, or takes your change.`;
  });
  return [
    `You worked on the task below and your change was committed. Meanwhile other work landed on ${onto}, and your change does not apply cleanly on top of it.`,
    'Resolve each conflict below in the working tree: keep what the other work did and make your change fit with it.',
    'Remove every conflict marker line (<<<<<<<, |||||||, =======, >>>>>>>). Do not commit and do not run git commands that change the repository; only edit the files.',
    '',
    '## The task',
    '',
    taskPrompt.trim(),
    '',
    '## Merge conflict',
    '',
    `Between your change ("ours" below is ${onto}, "theirs" is your commit) and ${onto}:`,
    '',
    sections.join('\n\n'),
  ].join('\n');
}

/** `git status --porcelain` codes of unmerged paths, in words. */
export function conflictKind(code: string): string {
  const kinds: Record<string, string> = {
    UU: 'both modified',
    AA: 'both added',
    DD: 'both deleted',
    AU: 'added by the other work',
    UA: 'added by your change',
    DU: 'deleted by the other work',
    UD: 'deleted by your change',
  };
  return kinds[code] ?? 'conflicted';
}
