import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { isTerminal, type Task } from '../core/schemas.js';

/**
 * A batch file for `autodev submit --file tasks.yaml` (YAML or JSON): a list of tasks, or
 * `{defaults, tasks}` where `defaults` (e.g. `repo`, `role`, `provider`) apply to every task that
 * does not say otherwise. Each task has a `key`; its `dependsOn` names other keys or task ids.
 *
 * ```yaml
 * defaults: { repo: ./app, role: backend }
 * tasks:
 *   - key: schema
 *     prompt: Add the orders table
 *   - key: api
 *     prompt: Add the orders API
 *     dependsOn: [schema]
 * ```
 *
 * A local `repo` path is taken relative to the file's directory. The server checks the rest.
 */
export function parseBatchFile(text: string, file: string): { tasks: Record<string, unknown>[] } {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const top = Array.isArray(doc) ? { tasks: doc } : doc;
  if (!top || typeof top !== 'object' || !Array.isArray((top as { tasks?: unknown }).tasks)) {
    throw new ConfigError(`${file}: expected a list of tasks, or a mapping with "tasks" (and "defaults").`);
  }
  const { defaults = {}, tasks } = top as { defaults?: unknown; tasks: unknown[] };
  if (!defaults || typeof defaults !== 'object' || Array.isArray(defaults)) {
    throw new ConfigError(`${file}: "defaults" must be a mapping.`);
  }
  const base = dirname(resolve(file));
  return {
    tasks: tasks.map((t, i) => {
      if (!t || typeof t !== 'object' || Array.isArray(t)) {
        throw new ConfigError(`${file}: task ${i} must be a mapping.`);
      }
      const task: Record<string, unknown> = { ...(defaults as object), ...(t as object) };
      if (typeof task.repo === 'string') task.repo = localRepo(task.repo, base);
      return task;
    }),
  };
}

/** A repository named by a local path, made absolute (URLs are left as they are). */
function localRepo(repo: string, base: string): string {
  const path = /^\./.test(repo) || (!repo.includes(':') && existsSync(resolve(base, repo)));
  return path && !isAbsolute(repo) ? resolve(base, repo) : repo;
}

/** Polls the tasks until every one has ended; they come back in the order of `ids`. */
export async function waitForAll(
  get: (id: string) => Promise<Task>,
  ids: readonly string[],
  pollMs = 500,
): Promise<Task[]> {
  const ended = new Map<string, Task>();
  for (;;) {
    for (const id of ids) {
      if (ended.has(id)) continue;
      const task = await get(id);
      if (isTerminal(task.status)) ended.set(id, task);
    }
    if (ended.size === ids.length) return ids.map((id) => ended.get(id) as Task);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
