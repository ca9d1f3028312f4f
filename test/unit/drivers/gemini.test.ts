import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { GeminiDriver } from '../../../lib/worker/drivers/gemini.js';
import { type FakeCase, fakeSuite, HANG_PROMPT, makeWorkspace, runFake } from './harness.js';

const none = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
const cases: FakeCase[] = [
  {
    name: 'success with edits (tokens of two models, each at its own price)',
    prompt: 'Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: {
      inputTokens: 13900,
      cachedInputTokens: 3100,
      outputTokens: 1270,
      // gemini-2.5-flash-lite $0.10 / $0.40; gemini-2.5-pro $1.25 / $0.125 cached / $10
      costUsd: (1500 * 0.1 + 40 * 0.4) / 1e6 + (9300 * 1.25 + 3100 * 0.125 + 1230 * 10) / 1e6,
    },
    changed: true,
  },
  {
    name: 'a prompt that begins with "-" (it stays the prompt)',
    prompt: '--help Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: {
      inputTokens: 13900,
      cachedInputTokens: 3100,
      outputTokens: 1270,
      // gemini-2.5-flash-lite $0.10 / $0.40; gemini-2.5-pro $1.25 / $0.125 cached / $10
      costUsd: (1500 * 0.1 + 40 * 0.4) / 1e6 + (9300 * 1.25 + 3100 * 0.125 + 1230 * 10) / 1e6,
    },
    changed: true,
  },
  {
    name: 'success without edits',
    prompt: 'Check things [fake:nochange]',
    errorClass: undefined,
    usage: {
      inputTokens: 5200,
      cachedInputTokens: 0,
      outputTokens: 240,
      costUsd: (5200 * 1.25 + 240 * 10) / 1e6,
    },
    changed: false,
  },
  {
    name: 'rate limit (error JSON on stderr, exit 173)',
    prompt: 'x [fake:rate_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'overload (503, exit 247)',
    prompt: 'x [fake:overloaded]',
    errorClass: 'overloaded',
    usage: none,
    changed: false,
  },
  {
    name: 'auth failure (API key not valid, exit 144)',
    prompt: 'x [fake:bad_key]',
    errorClass: 'auth',
    usage: none,
    changed: false,
  },
  {
    name: 'context overflow (exit 144)',
    prompt: 'x [fake:context]',
    errorClass: 'context_overflow',
    usage: none,
    changed: false,
  },
  {
    name: 'turn limit (exit 53)',
    prompt: 'x [fake:max_turns]',
    errorClass: 'budget',
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
  'GeminiDriver against the fake gemini CLI',
  new GeminiDriver(),
  cases,
  {},
  { GEMINI_API_KEY: 'test-key' },
);

describe('GeminiDriver', () => {
  it('builds the headless command line with yolo approval and a private GEMINI_CLI_HOME', () => {
    // Arrange
    const { workdir, homeDir } = makeWorkspace();
    // Act
    const cmd = new GeminiDriver().command({
      prompt: 'Fix the bug',
      workdir,
      homeDir,
      model: 'gemini-2.5-flash',
      systemPrompt: 'You are a backend engineer.',
    });
    // Assert
    expect(cmd.args).toEqual([
      '--prompt=You are a backend engineer.\n\nFix the bug',
      '--output-format',
      'json',
      '--approval-mode=yolo',
      '--skip-trust',
      '-m',
      'gemini-2.5-flash',
    ]);
    expect(cmd.env).toEqual({ GEMINI_CLI_HOME: homeDir });
    expect(cmd.stdin).toBeUndefined();
  });

  it('writes the turn cap into the private settings, with telemetry, usage statistics and updates off', () => {
    // Arrange
    const { workdir, homeDir } = makeWorkspace();
    // Act
    new GeminiDriver().command({ prompt: 'p', workdir, homeDir, maxTurns: 12 });
    // Assert
    expect(JSON.parse(readFileSync(`${homeDir}/.gemini/settings.json`, 'utf8'))).toEqual({
      model: { maxSessionTurns: 12 },
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
      privacy: { usageStatisticsEnabled: false },
      telemetry: { enabled: false },
    });
  });

  it.concurrent('reads the response and the session id', async () => {
    // Act
    const run = await runFake(
      new GeminiDriver(),
      { prompt: 'Add notes [fake:edit=NOTES.md]', model: 'gemini-2.5-flash' },
      { env: { GEMINI_API_KEY: 'k' } },
    );
    // Assert
    expect(run.errorClass).toBeUndefined();
    expect(run.parsed.text).toBe('Updated NOTES.md as asked.');
    expect(run.parsed.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    // gemini-2.5-flash: $0.30 / $0.03 cached / $2.50
    expect(run.parsed.usage?.costUsd).toBeCloseTo(
      (1500 * 0.1 + 40 * 0.4) / 1e6 + (9300 * 0.3 + 3100 * 0.03 + 1230 * 2.5) / 1e6,
      9,
    );
  });

  it.concurrent('classifies exit 41 (no auth method) as auth, from the error JSON on stderr', async () => {
    // Act
    const run = await runFake(new GeminiDriver(), { prompt: 'Add notes [fake:edit=NOTES.md]' });
    // Assert
    expect(run.output.exitCode).toBe(41);
    expect(run.output.stdout).toBe('');
    expect(run.errorClass).toBe('auth');
    expect(run.parsed.errorMessage).toMatch(/Please set an Auth method/);
  });

  it.concurrent("reads Gemini CLI's own loop detection (exit 0 with its loop warning) as loop_detected", async () => {
    // Act
    const run = await runFake(
      new GeminiDriver(),
      { prompt: 'Keep editing [fake:loop]' },
      { env: { GEMINI_API_KEY: 'k' } },
    );
    // Assert
    expect(run.output.exitCode).toBe(0);
    expect(run.parsed.fatalCode).toBe('loop_detected');
    expect(run.parsed.errorMessage).toContain('Loop detected, stopping execution');
    expect(run.parsed.usage?.inputTokens).toBe(6100);
  });

  it.concurrent('has no fatal code for a run that ends as asked', async () => {
    const run = await runFake(
      new GeminiDriver(),
      { prompt: 'Add notes [fake:edit=NOTES.md]' },
      { env: { GEMINI_API_KEY: 'k' } },
    );
    expect(run.parsed.fatalCode).toBeUndefined();
    expect(run.parsed.errorMessage).toBeUndefined();
  });

  it.concurrent('keeps the API message of an error for people', async () => {
    // Act
    const run = await runFake(
      new GeminiDriver(),
      { prompt: 'x [fake:rate_limit]' },
      { env: { GEMINI_API_KEY: 'k' } },
    );
    // Assert
    expect(run.output.exitCode).toBe(173);
    expect(run.parsed.errorMessage).toMatch(/Resource has been exhausted/);
    expect(run.parsed.sessionId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
