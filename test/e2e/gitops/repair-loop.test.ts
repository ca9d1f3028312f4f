import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { runAgentProcess } from '../../../lib/worker/agent-process.js';
import { publishPullRequest, pullRequestTitle } from '../../../lib/worker/forge/index.js';
import { readAutodevConfig, runGatesWithRepairs } from '../../../lib/worker/gates.js';
import { parseReview } from '../../../lib/worker/review.js';
import { scanBeforePush } from '../../../lib/worker/secret-scan.js';
import { tempDir } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';
import { FORGE_TOKEN, type GitOpsWorld, remoteBranch, startWorld } from './helpers.js';

/**
 * A fake coding agent: given the task, it adds `mul` but breaks `add`; given a prompt that shows the
 * failing test's output, it repairs `add` (unless the task says it is stubborn). It logs each prompt
 * it gets to $AGENT_LOG, outside the worktree.
 */
const FAKE_AGENT = `
const fs = require('node:fs');
let prompt = '';
process.stdin.on('data', (c) => (prompt += c));
process.stdin.on('end', () => {
  fs.appendFileSync(process.env.AGENT_LOG, JSON.stringify(prompt) + '\\n');
  const broken = 'module.exports = { add: (a, b) => a - b, mul: (a, b) => a * b };\\n';
  const fixed = 'module.exports = { add: (a, b) => a + b, mul: (a, b) => a * b };\\n';
  const repairing = prompt.includes('add(2, 3) should be 5, got -1');
  fs.writeFileSync('calc.js', repairing && !prompt.includes('[stubborn]') ? fixed : broken);
  console.log(repairing ? 'Fixed add.' : 'Added mul.');
});
`;

const REPO = {
  'calc.js': 'module.exports = { add: (a, b) => a + b };\n',
  'test.js': `const { add, mul } = require('./calc');
let failed = 0;
const check = (what, got, want) => {
  if (got !== want) {
    failed++;
    console.error('FAIL: ' + what + ' should be ' + want + ', got ' + got);
  }
};
check('add(2, 3)', add(2, 3), 5);
check('mul(2, 3)', typeof mul === 'function' ? mul(2, 3) : undefined, 6);
console.log(failed ? failed + ' failed' : 'all passed');
process.exit(failed ? 1 : 0);
`,
  '.autodev.yml':
    'gates:\n  - name: test\n    run: node test.js\n    timeoutSeconds: 30\nrepairRounds: 2\ndraftOnFailure: true\n',
};

let world: GitOpsWorld | undefined;
afterEach(async () => {
  expect(world?.forge.violations ?? []).toEqual([]);
  await world?.close();
  world = undefined;
});

async function runTask(w: GitOpsWorld, taskId: string, prompt: string, reviewText?: string) {
  const scratch = tempDir('autodev-agent-');
  const agent = join(scratch, 'agent.cjs');
  const agentLog = join(scratch, 'prompts.jsonl');
  writeFileSync(agent, FAKE_AGENT);
  writeFileSync(agentLog, '');
  const task = makeTask({ id: taskId, repo: w.repoUrl, prompt, provider: 'fake' });
  const ws = await w.workspaces.prepare(task.id, task.repo);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.homeDir, AGENT_LOG: agentLog };
  const runAgent = async (text: string) => {
    const out = await runAgentProcess({
      bin: process.execPath,
      args: [agent],
      cwd: ws.dir,
      env,
      stdin: text,
      limits: { timeoutMs: 20_000 },
    });
    if (out.exitCode !== 0) throw new Error(`agent failed: ${out.stderr}`);
  };
  try {
    // the attempt: agent, gates with repair rounds, commit, scan, push, pull request
    await runAgent(task.prompt);
    const config = readAutodevConfig(ws.dir);
    const gates = await runGatesWithRepairs({
      workdir: ws.dir,
      config,
      taskPrompt: task.prompt,
      env,
      repair: (repair) => runAgent(repair),
    });
    const committed = await w.workspaces.commit(ws, pullRequestTitle(task), 'summary');
    expect(await scanBeforePush(ws.dir, ws.baseCommit)).toEqual([]);
    await w.workspaces.push(ws);
    const review = reviewText ? parseReview(reviewText) : undefined;
    if (review && !review.ok) throw new Error(review.error);
    const published = await publishPullRequest({
      task: { ...task, commit: committed.commit, summary: 'Added mul.' },
      branch: ws.branch,
      base: ws.baseBranch,
      gates: gates.results,
      draftOnFailure: config.draftOnFailure,
      review: review?.review,
      forges: [{ host: w.host, kind: 'github', apiBaseUrl: w.forge.githubApi, tokenSecret: 'GHE_TOKEN' }],
      secrets: { GHE_TOKEN: FORGE_TOKEN },
      logsUrl: `http://127.0.0.1:8001/v1/tasks/${task.id}/logs`,
    });
    const prompts = readFileSync(agentLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string);
    return {
      gates,
      prompts,
      published,
      commit: committed.commit,
      calc: readFileSync(join(ws.dir, 'calc.js'), 'utf8'),
    };
  } finally {
    await w.workspaces.remove(ws);
  }
}

describe('quality gates with repair rounds', () => {
  it('gives the failing test output back to the agent, which fixes it; the pull request shows the gate passed', async () => {
    // Arrange
    world = await startWorld(REPO);

    // Act
    const reviewText = [
      'The change adds mul and keeps add working.',
      '```json',
      JSON.stringify({
        verdict: 'approve',
        summary: 'Correct and tested.',
        comments: [{ path: 'calc.js', line: 1, body: 'Consider a doc comment.' }],
      }),
      '```',
    ].join('\n');
    const out = await runTask(world, 'tsk_repair', 'Add a mul function to calc.js', reviewText);

    // Assert
    expect(out.gates.ok).toBe(true);
    expect(out.gates.rounds).toBe(1);
    expect(out.gates.results).toEqual([expect.objectContaining({ name: 'test', ok: true, exitCode: 0 })]);
    expect(out.prompts).toHaveLength(2);
    expect(out.prompts[0]).toBe('Add a mul function to calc.js');
    expect(out.prompts[1]).toContain('### test failed with exit code 1');
    expect(out.prompts[1]).toContain('FAIL: add(2, 3) should be 5, got -1');
    expect(out.prompts[1]).toContain('Add a mul function to calc.js');
    expect(out.calc).toContain('a + b');
    expect(remoteBranch(world.remote, 'autodev/tsk_repair')).toBe(out.commit);
    expect(out.published).toMatchObject({
      outcome: 'opened',
      pullRequest: { number: 1 },
      reviewPosted: true,
    });
    expect(world.forge.pulls[0]).toMatchObject({ draft: false, labels: ['autodev'] });
    expect(world.forge.pulls[0]?.body).toContain('| test | ✅ passed |');
    expect(world.forge.pulls[0]?.body).toContain('**Approved** by the review agent. Correct and tested.');
    expect(world.forge.pulls[0]?.body).toContain(
      '[task logs](http://127.0.0.1:8001/v1/tasks/tsk_repair/logs)',
    );
    expect(world.forge.pulls[0]?.reviews).toEqual([
      {
        event: 'APPROVE',
        body: 'Correct and tested.',
        comments: [{ path: 'calc.js', line: 1, side: 'RIGHT', body: 'Consider a doc comment.' }],
      },
    ]);
  });

  it('stops after the configured rounds and opens a draft when the gates still fail', async () => {
    world = await startWorld(REPO);
    const out = await runTask(world, 'tsk_stubborn', 'Add a mul function to calc.js [stubborn]');
    expect(out.gates.ok).toBe(false);
    expect(out.gates.rounds).toBe(2);
    expect(out.prompts).toHaveLength(3);
    expect(out.gates.results[0]).toMatchObject({ ok: false, exitCode: 1 });
    expect(out.published).toMatchObject({ outcome: 'opened' });
    expect(world.forge.pulls[0]).toMatchObject({ draft: true, labels: ['autodev', 'autodev:gates-failed'] });
    expect(world.forge.pulls[0]?.body).toContain('| test | ❌ exit 1 |');
    expect(world.forge.pulls[0]?.body).toContain('FAIL: add(2, 3) should be 5, got -1');
  });
});
