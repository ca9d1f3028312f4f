import { z } from 'zod';
import type { TaskStore } from './ports.js';
import type { Task, TaskStatus } from './schemas.js';

/**
 * Serialized by the files they declare: a task that names the files it will change (`files`) waits
 * for the earlier tasks of its tenant on the same repository and base branch that named any of them
 * and have not ended (`waitsFor`), instead of running beside them and meeting them in the merge
 * train as a conflict. It waits for them to end, however they end. Pure but for one store read.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/** One declared path: a file, or a folder (`src/orders/`) that holds every path under it. */
export const DeclaredPath = z
  .string()
  .min(1)
  .max(512)
  .refine((p) => !CONTROL.test(p), 'must not hold control characters')
  .refine((p) => !p.startsWith('/'), 'a path in the repository, without a leading "/"')
  .refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), 'must not hold "." or ".." segments');

export const DeclaredFiles = z.array(DeclaredPath).min(1).max(100);

/** The statuses of a task that has not ended. */
const ACTIVE: readonly TaskStatus[] = ['queued', 'blocked', 'running', 'retrying'];

/** Tasks looked at per status when a submission declares files, and pages read for them. */
const SCAN_LIMIT = 1_000;
const MAX_PAGES = 20;

/** Whether two declared paths name a common file: equal, or one is a folder holding the other. */
export function pathsOverlap(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/\/+$/, '');
  const x = norm(a);
  const y = norm(b);
  return x === y || y.startsWith(`${x}/`) || x.startsWith(`${y}/`);
}

/** Whether two tasks' declared files overlap, on the same repository and base branch. */
export function claimsOverlap(
  a: Pick<Task, 'repo' | 'baseBranch' | 'files'>,
  b: Pick<Task, 'repo' | 'baseBranch' | 'files'>,
): boolean {
  if (a.repo !== b.repo || (a.baseBranch ?? '') !== (b.baseBranch ?? '')) return false;
  return (a.files ?? []).some((x) => (b.files ?? []).some((y) => pathsOverlap(x, y)));
}

/** The earlier tasks of the tenant, not ended, whose declared files overlap the new task's. */
export async function earlierClaims(
  store: Pick<TaskStore, 'list'>,
  tenant: string,
  task: Pick<Task, 'repo' | 'baseBranch' | 'files'>,
): Promise<string[]> {
  if (!task.files?.length) return [];
  const ids: string[] = [];
  for (const status of ACTIVE) {
    let cursor: string | undefined;
    let seen = 0;
    let pages = 0;
    do {
      const page = await store.list(tenant, { status, limit: 100, cursor });
      for (const t of page.items) if (claimsOverlap(task, t)) ids.push(t.id);
      seen += page.items.length;
      pages++;
      cursor = page.nextCursor;
      // a store that filters after reading (DynamoDB) may answer pages with few items: bounded either way
    } while (cursor && seen < SCAN_LIMIT && pages < MAX_PAGES);
  }
  return [...new Set(ids)];
}

/** Whether every task waited for has ended (or is gone): the waiting is over. */
export function waitOver(waited: readonly (Task | undefined)[]): boolean {
  return waited.every((t) => !t || !ACTIVE.includes(t.status));
}
