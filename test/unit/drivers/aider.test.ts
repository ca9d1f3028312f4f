import { describe, expect, it } from '@jest/globals';
import type { ProcessOutput } from '../../../lib/core/ports.js';
import { AiderDriver } from '../../../lib/worker/drivers/aider.js';
import { type FakeCase, fakeSuite, HANG_PROMPT, runFake } from './harness.js';

const none = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
const cases: FakeCase[] = [
  {
    name: 'success with edits (usage from "Tokens: 12k sent, 1.1k received. Cost: ...")',
    prompt: 'Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: { inputTokens: 12000, cachedInputTokens: 0, outputTokens: 1100, costUsd: 0.05 },
    changed: true,
  },
  {
    name: 'a prompt that begins with "-" (it stays the prompt)',
    prompt: '--help Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: { inputTokens: 12000, cachedInputTokens: 0, outputTokens: 1100, costUsd: 0.05 },
    changed: true,
  },
  {
    name: 'success without edits (a report with cache hits)',
    prompt: 'Check things [fake:nochange]',
    errorClass: undefined,
    usage: { inputTokens: 4200, cachedInputTokens: 2300, outputTokens: 310, costUsd: 0.0091 },
    changed: false,
  },
  {
    name: 'rate limit (exit 0, RateLimitError)',
    prompt: 'x [fake:rate_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'overload (exit 0, Overloaded)',
    prompt: 'x [fake:overloaded]',
    errorClass: 'overloaded',
    usage: none,
    changed: false,
  },
  {
    name: 'auth failure (exit 0, AuthenticationError)',
    prompt: 'x [fake:bad_key]',
    errorClass: 'auth',
    usage: none,
    changed: false,
  },
  {
    name: 'context overflow (exit 0, exhausted context window)',
    prompt: 'x [fake:context]',
    errorClass: 'context_overflow',
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
  'AiderDriver against the fake aider CLI',
  new AiderDriver(),
  cases,
  { model: 'anthropic/claude-sonnet-4-20250514' },
  { ANTHROPIC_API_KEY: 'sk-ant-test' },
);

const output = (stdout: string, exitCode = 0): ProcessOutput => ({
  stdout,
  stderr: '',
  exitCode,
  signal: null,
  timedOut: false,
});

describe('AiderDriver', () => {
  it('builds the one-shot command line with history files in the private home', () => {
    // Act
    const cmd = new AiderDriver().command({
      prompt: 'Fix the bug',
      workdir: '/w/repo',
      homeDir: '/w/home',
      model: 'gpt-5',
      systemPrompt: 'You are a backend engineer.',
    });
    // Assert
    expect(cmd.args).toEqual([
      '--message=You are a backend engineer.\n\nFix the bug',
      '--yes-always',
      '--no-auto-commits',
      '--no-stream',
      '--no-pretty',
      '--analytics-disable',
      '--no-check-update',
      '--model',
      'gpt-5',
      '--no-show-model-warnings',
      '--no-gitignore',
      '--chat-history-file',
      '/w/home/.aider.chat.history.md',
      '--input-history-file',
      '/w/home/.aider.input.history',
    ]);
    expect(cmd.env).toEqual({ HOME: '/w/home' });
  });

  it.concurrent('runs an Ollama model with OLLAMA_API_BASE and the ollama_chat/ prefix, at no cost', async () => {
    // Arrange
    const driver = new AiderDriver({ ollamaApiBase: 'http://127.0.0.1:11434' });
    // Act
    const run = await runFake(driver, { prompt: 'Add [fake:edit=A.md]', model: 'qwen2.5-coder:32b' });
    // Assert
    expect(
      driver.command({ prompt: 'p', workdir: '/w', homeDir: '/h', model: 'qwen2.5-coder:32b' }).env,
    ).toEqual({
      HOME: '/h',
      OLLAMA_API_BASE: 'http://127.0.0.1:11434',
    });
    expect(driver.credentialEnv).toEqual([]);
    expect(run.output.stdout).toContain('Main model: ollama_chat/qwen2.5-coder:32b');
    expect(run.errorClass).toBeUndefined();
    expect(run.changes).toEqual(['?? A.md']);
    expect(run.parsed.usage).toMatchObject({ inputTokens: 3100, outputTokens: 420, costUsd: 0 });
  });

  it.concurrent('reads the reply without the banner, the edit blocks and the report', async () => {
    // Act
    const run = await runFake(
      new AiderDriver(),
      { prompt: 'Add [fake:edit=A.md]', model: 'anthropic/claude-sonnet-4-20250514' },
      { env: { ANTHROPIC_API_KEY: 'k' } },
    );
    // Assert
    expect(run.parsed.text).toBe("I'll add the note to A.md.");
    expect(run.parsed.reportedError).toBe(false);
  });

  it.concurrent('classifies a missing key as auth although aider exits 0', async () => {
    // Act
    const run = await runFake(new AiderDriver(), {
      prompt: 'Add [fake:edit=A.md]',
      model: 'anthropic/claude-sonnet-4-20250514',
    });
    // Assert
    expect(run.output.exitCode).toBe(0);
    expect(run.errorClass).toBe('auth');
    expect(run.parsed.errorMessage).toMatch(/AuthenticationError/);
  });

  it('sums the reports of several calls, keeps the session cost and reads k and M suffixes', () => {
    // Arrange
    const stdout = [
      'Aider v0.86.1',
      '',
      'First answer.',
      'Tokens: 1.2M sent, 8.1k cache write, 900k cache hit, 2.5k received. Cost: $1.10 message, $1.10 session.',
      'The fix needs one more change.',
      'Tokens: 950 sent, 87 received. Cost: $0.0042 message, $1.11 session.',
    ].join('\n');
    // Act
    const parsed = new AiderDriver().parse(output(stdout));
    // Assert
    expect(parsed.usage).toEqual({
      inputTokens: 1_200_950,
      cachedInputTokens: 900_000,
      outputTokens: 2587,
      costUsd: 1.11,
    });
  });

  it('does not take words of a successful reply for a failure', () => {
    // Arrange: the reply talks about rate limits and overload, and the call was reported
    const stdout = [
      'Aider v0.86.1',
      '',
      'Added a RateLimitError handler; the server now answers 429 when overloaded.',
      'Tokens: 12k sent, 1.1k received. Cost: $0.05 message, $0.05 session.',
      'Applied edit to api.py',
    ].join('\n');
    // Act
    const driver = new AiderDriver();
    const parsed = driver.parse(output(stdout));
    // Assert
    expect(driver.classify(output(stdout), parsed)).toBeUndefined();
  });

  it('classifies a failure after an earlier successful call', () => {
    // Arrange
    const stdout = [
      'Tokens: 12k sent, 1.1k received. Cost: $0.05 message, $0.05 session.',
      'litellm.RateLimitError: OpenAIException - Rate limit reached for gpt-5',
      'The API provider has rate limited you. Try again later or check your quotas.',
    ].join('\n');
    // Act
    const driver = new AiderDriver();
    const parsed = driver.parse(output(stdout));
    // Assert
    expect(parsed.reportedError).toBe(true);
    expect(driver.classify(output(stdout), parsed)).toBe('rate_limit');
    expect(parsed.usage?.costUsd).toBe(0.05);
  });
});
