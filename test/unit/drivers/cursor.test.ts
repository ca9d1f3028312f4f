import { describe, expect, it } from '@jest/globals';
import { CursorDriver } from '../../../lib/worker/drivers/cursor.js';
import { type FakeCase, fakeSuite, HANG_PROMPT, runFake } from './harness.js';

const none = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
const cases: FakeCase[] = [
  {
    name: 'success with edits (a result with usage, priced by the model)',
    prompt: 'Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    // 5400 input + 12000 cache read + 800 cache write; gpt-5: $1.25 / $0.125 cached / $10
    usage: {
      inputTokens: 18200,
      cachedInputTokens: 12000,
      outputTokens: 380,
      costUsd: (6200 * 1.25 + 12000 * 0.125 + 380 * 10) / 1e6,
    },
    changed: true,
  },
  {
    name: 'a prompt that begins with "-" (it stays the prompt)',
    prompt: '--help Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    // 5400 input + 12000 cache read + 800 cache write; gpt-5: $1.25 / $0.125 cached / $10
    usage: {
      inputTokens: 18200,
      cachedInputTokens: 12000,
      outputTokens: 380,
      costUsd: (6200 * 1.25 + 12000 * 0.125 + 380 * 10) / 1e6,
    },
    changed: true,
  },
  {
    name: 'success without edits (a result without usage)',
    prompt: 'Check things [fake:nochange]',
    errorClass: undefined,
    usage: none,
    changed: false,
  },
  {
    name: 'rate limit (stderr only)',
    prompt: 'x [fake:rate_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'overload (stderr only)',
    prompt: 'x [fake:overloaded]',
    errorClass: 'overloaded',
    usage: none,
    changed: false,
  },
  {
    name: 'auth failure (stderr only)',
    prompt: 'x [fake:bad_key]',
    errorClass: 'auth',
    usage: none,
    changed: false,
  },
  {
    name: 'context overflow (stderr only)',
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
  'CursorDriver against the fake cursor-agent CLI',
  new CursorDriver(),
  cases,
  { model: 'gpt-5' },
  {
    CURSOR_API_KEY: 'key_test',
  },
);

describe('CursorDriver', () => {
  it('builds the print-mode command line with the prompt last and a private HOME', () => {
    // Act
    const cmd = new CursorDriver().command({
      prompt: 'Fix the bug',
      workdir: '/w/repo',
      homeDir: '/w/home',
      model: 'sonnet-4.5',
      systemPrompt: 'You are a backend engineer.',
    });
    // Assert
    expect(cmd.args).toEqual([
      '-p',
      '--force',
      '--trust',
      '--output-format',
      'json',
      '--model',
      'sonnet-4.5',
      '--workspace',
      '/w/repo',
      '--',
      'You are a backend engineer.\n\nFix the bug',
    ]);
    expect(cmd.env).toEqual({ HOME: '/w/home' });
    expect(new CursorDriver().credentialEnv).toEqual(['CURSOR_API_KEY']);
  });

  it.concurrent('reads the result text and session id, and keeps the stderr message of a failure', async () => {
    // Act
    const ok = await runFake(
      new CursorDriver(),
      { prompt: 'Add [fake:edit=A.md]' },
      { env: { CURSOR_API_KEY: 'k' } },
    );
    const failed = await runFake(
      new CursorDriver(),
      { prompt: 'x [fake:overloaded]' },
      { env: { CURSOR_API_KEY: 'k' } },
    );
    // Assert
    expect(ok.parsed.text).toBe('Updated A.md as asked.');
    expect(ok.parsed.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    // no model named: priced at the default ($3 / $0.30 cached / $15)
    expect(ok.parsed.usage?.costUsd).toBeCloseTo((6200 * 3 + 12000 * 0.3 + 380 * 15) / 1e6, 9);
    expect(failed.output.stdout).toBe('');
    expect(failed.parsed.errorMessage).toMatch(/overloaded/);
  });

  it.concurrent('classifies a missing key as auth', async () => {
    // Act
    const run = await runFake(new CursorDriver(), { prompt: 'Add [fake:edit=A.md]' });
    // Assert
    expect(run.output.exitCode).toBe(1);
    expect(run.errorClass).toBe('auth');
  });
});
