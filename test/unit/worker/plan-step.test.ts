import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { MAX_PLAN_BYTES, PLAN_FILE } from '../../../lib/core/epics.js';
import { readPlanFile } from '../../../lib/worker/plan-step.js';

describe("the planning attempt's plan file", () => {
  it('is read when the agent wrote it as a regular file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'autodev-plan-'));
    writeFileSync(join(dir, PLAN_FILE), '{"tasks": []}');
    expect(await readPlanFile(join(dir, PLAN_FILE))).toBe('{"tasks": []}');
    expect(await readPlanFile(join(dir, 'missing.json'))).toBeUndefined();
  });

  it('is never read through a link (the agent cannot make the server read its files) nor when too large', async () => {
    // Arrange: a file outside the worktree that the server may read, and the agent's link to it
    const dir = mkdtempSync(join(tmpdir(), 'autodev-plan-'));
    const secret = join(dir, 'server-secret.json');
    writeFileSync(secret, '{"tasks": [{"key": "a", "prompt": "the server secret"}]}');
    symlinkSync(secret, join(dir, PLAN_FILE));
    const big = join(dir, 'big.json');
    writeFileSync(big, 'x'.repeat(MAX_PLAN_BYTES + 1));
    // Act / Assert
    expect(await readPlanFile(join(dir, PLAN_FILE))).toBeUndefined();
    expect(await readPlanFile(big)).toBeUndefined();
  });
});
