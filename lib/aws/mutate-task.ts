import { ConflictError } from '../core/errors.js';
import type { Task } from '../core/schemas.js';

interface VersionedStore {
  getById(id: string): Promise<Task | undefined>;
  put(task: Task, expectedVersion: number): Promise<void>;
}

/**
 * Applies `fn` to the latest stored task with a conditional write on its version, reading again
 * when another writer won. `fn` returns undefined to leave the task as it is.
 */
export async function mutateTask(
  store: VersionedStore,
  id: string,
  fn: (task: Task) => Task | undefined,
  attempts = 10,
): Promise<{ before: Task; after?: Task } | undefined> {
  let current = await store.getById(id);
  for (let i = 0; i < attempts && current; i++) {
    const next = fn(current);
    if (!next || next === current) return { before: current };
    try {
      await store.put(next, current.version);
      return { before: current, after: next };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      current = await store.getById(id);
    }
  }
  if (!current) return undefined;
  throw new ConflictError(`Task ${id} kept changing; giving up after ${attempts} tries.`);
}
