import { newTaskId } from '../../lib/core/ids.js';
import { type Task, ZERO_USAGE } from '../../lib/core/schemas.js';

/** A valid task record for store and core tests. */
export function makeTask(overrides: Partial<Task> = {}): Task {
  const now = new Date().toISOString();
  return {
    id: newTaskId(),
    tenant: 'acme',
    status: 'queued',
    repo: 'https://example.com/acme/app.git',
    prompt: 'Add a health endpoint',
    role: 'backend',
    priority: 'normal',
    dependsOn: [],
    limits: {},
    labels: [],
    createdAt: now,
    updatedAt: now,
    attempts: [],
    usage: { ...ZERO_USAGE },
    version: 0,
    ...overrides,
  };
}
