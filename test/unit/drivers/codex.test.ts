import { existsSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CodexDriver } from '../../../lib/worker/drivers/codex.js';
import { type FakeCase, fakeSuite, HANG_PROMPT, makeWorkspace, runFake } from './harness.js';

const none = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
// gpt-5-codex: $1.25 / $0.125 cached / $10 per million tokens
const cases: FakeCase[] = [
  {
    name: 'success with edits',
    prompt: 'Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: {
      inputTokens: 24763,
      cachedInputTokens: 24448,
      outputTokens: 122,
      costUsd: (315 * 1.25 + 24448 * 0.125 + 122 * 10) / 1e6,
    },
    changed: true,
  },
  {
    name: 'a prompt that begins with "-" (it stays the prompt)',
    prompt: '--help Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: {
      inputTokens: 24763,
      cachedInputTokens: 24448,
      outputTokens: 122,
      costUsd: (315 * 1.25 + 24448 * 0.125 + 122 * 10) / 1e6,
    },
    changed: true,
  },
  {
    name: 'success without edits',
    prompt: 'Check things [fake:nochange]',
    errorClass: undefined,
    usage: {
      inputTokens: 8120,
      cachedInputTokens: 4096,
      outputTokens: 311,
      costUsd: (4024 * 1.25 + 4096 * 0.125 + 311 * 10) / 1e6,
    },
    changed: false,
  },
  {
    name: 'rate limit (429 after retries)',
    prompt: 'x [fake:rate_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'usage limit',
    prompt: 'x [fake:usage_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'overload (503 after retries)',
    prompt: 'x [fake:overloaded]',
    errorClass: 'overloaded',
    usage: none,
    changed: false,
  },
  { name: 'auth failure (401)', prompt: 'x [fake:bad_key]', errorClass: 'auth', usage: none, changed: false },
  {
    name: 'context overflow',
    prompt: 'x [fake:context]',
    errorClass: 'context_overflow',
    usage: none,
    changed: false,
  },
  {
    name: 'exit 0 having run nothing',
    prompt: 'x [fake:noop]',
    errorClass: 'crash',
    usage: none,
    changed: false,
  },
  { name: 'crash (killed)', prompt: 'x [fake:crash]', errorClass: 'crash', usage: none, changed: false },
  {
    name: 'hang (timeout)',
    prompt: HANG_PROMPT,
    errorClass: 'timeout',
    usage: none,
    changed: false,
    hang: true,
  },
];

fakeSuite(
  'CodexDriver against the fake codex CLI',
  new CodexDriver(),
  cases,
  {},
  { CODEX_API_KEY: 'sk-test' },
);

/** What every run is given: no update check, analytics, feedback, plugin marketplaces or apps. */
const QUIET_ARGS = [
  'check_for_update_on_startup=false',
  'analytics.enabled=false',
  'feedback.enabled=false',
  'features.plugins=false',
  'features.remote_plugin=false',
  'features.plugin_sharing=false',
  'features.apps=false',
].flatMap((s) => ['-c', s]);

describe('CodexDriver', () => {
  it('builds the headless command line with the prompt on stdin and a private CODEX_HOME', () => {
    // Arrange
    const { workdir, homeDir } = makeWorkspace();
    // Act
    const cmd = new CodexDriver().command({
      prompt: 'Fix the bug',
      workdir,
      homeDir,
      model: 'gpt-5-codex',
      systemPrompt: 'You are a backend engineer.',
    });
    // Assert
    expect(cmd.args).toEqual([
      'exec',
      ...QUIET_ARGS,
      '--json',
      '--skip-git-repo-check',
      '--dangerously-bypass-approvals-and-sandbox',
      '-m',
      'gpt-5-codex',
      '-C',
      workdir,
      '-',
    ]);
    expect(cmd.stdin).toBe('You are a backend engineer.\n\nFix the bug');
    expect(cmd.env).toEqual({ CODEX_HOME: `${homeDir}/.codex` });
    expect(existsSync(`${homeDir}/.codex`)).toBe(true);
  });

  it.concurrent('runs a local model with --oss --local-provider, needs no key and costs nothing', async () => {
    // Arrange
    const driver = new CodexDriver({ oss: true, localProvider: 'ollama' });
    // Act
    const run = await runFake(driver, { prompt: 'Add notes [fake:edit=NOTES.md]', model: 'gpt-oss:20b' });
    // Assert
    expect(driver.credentialEnv).toEqual([]);
    expect(driver.command({ prompt: 'p', workdir: run.workdir, homeDir: run.homeDir }).args).toEqual([
      'exec',
      ...QUIET_ARGS,
      '--json',
      '--skip-git-repo-check',
      '--dangerously-bypass-approvals-and-sandbox',
      '--oss',
      '--local-provider',
      'ollama',
      '-C',
      run.workdir,
      '-',
    ]);
    expect(run.errorClass).toBeUndefined();
    expect(run.changes).toEqual(['?? NOTES.md']);
    expect(run.parsed.usage).toMatchObject({ inputTokens: 24763, outputTokens: 122, costUsd: 0 });
  });

  it.concurrent('prices tokens by the model of the run', async () => {
    // Act
    const run = await runFake(
      new CodexDriver(),
      { prompt: 'Add notes [fake:edit=NOTES.md]', model: 'gpt-5-mini' },
      { env: { OPENAI_API_KEY: 'sk-test' } },
    );
    // Assert: gpt-5-mini is $0.25 / $0.025 cached / $2 per million tokens
    expect(run.errorClass).toBeUndefined();
    expect(run.parsed.usage?.costUsd).toBeCloseTo((315 * 0.25 + 24448 * 0.025 + 122 * 2) / 1e6, 9);
  });

  it.concurrent('reads the final message and the session id from the event stream', async () => {
    // Act
    const run = await runFake(
      new CodexDriver(),
      { prompt: 'Add notes [fake:edit=NOTES.md]' },
      { env: { CODEX_API_KEY: 'k' } },
    );
    // Assert
    expect(run.parsed.text).toBe('Updated NOTES.md as asked.');
    expect(run.parsed.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(run.parsed.reportedError).toBe(false);
  });

  it.concurrent('fails with auth when no key is set at all', async () => {
    // Act
    const run = await runFake(new CodexDriver(), { prompt: 'Add notes [fake:edit=NOTES.md]' });
    // Assert
    expect(run.errorClass).toBe('auth');
    expect(run.parsed.errorMessage).toMatch(/401 Unauthorized/);
  });
});

describe('CodexDriver.parse', () => {
  const out = (lines: object[], exitCode = 0) => ({
    stdout: `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`,
    stderr: '',
    exitCode,
    signal: null,
    timedOut: false,
  });

  it('takes a turn that completed after a retry notice for a success', () => {
    // Arrange
    const output = out([
      { type: 'thread.started', thread_id: 't' },
      { type: 'turn.started' },
      { type: 'error', message: 'Reconnecting... 1/5 (stream disconnected before completion)' },
      { type: 'item.completed', item: { id: 'item_1', type: 'agent_message', text: 'Done.' } },
      { type: 'turn.completed', usage: { input_tokens: 1000, cached_input_tokens: 0, output_tokens: 10 } },
    ]);
    const driver = new CodexDriver();
    // Act
    const parsed = driver.parse(output);
    // Assert
    expect(parsed.reportedError).toBe(false);
    expect(driver.classify(output, parsed)).toBeUndefined();
    expect(parsed.text).toBe('Done.');
  });

  it('takes an exit code 1 without events for a crash', () => {
    const output = { ...out([], 1), stderr: 'Error: failed to initialize sandbox\n' };
    const driver = new CodexDriver();
    expect(driver.classify(output, driver.parse(output))).toBe('crash');
  });
});
