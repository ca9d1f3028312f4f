import { describe, expect, it } from '@jest/globals';
import { ClaudeDriver } from '../../../lib/worker/drivers/claude.js';
import { type FakeCase, fakeSuite, HANG_PROMPT } from './harness.js';

const none = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
// 8 input + 192 cache creation + 17004 cache read; Claude reports its own cost
const reported = { inputTokens: 17204, cachedInputTokens: 17004, outputTokens: 32, costUsd: 0.3464 };
const cases: FakeCase[] = [
  {
    name: 'success with edits',
    prompt: 'Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: reported,
    changed: true,
  },
  {
    name: 'a prompt that begins with "-" (it stays the prompt)',
    prompt: '--help Add notes [fake:edit=NOTES.md]',
    errorClass: undefined,
    usage: reported,
    changed: true,
  },
  {
    name: 'success without edits',
    prompt: 'Check things [fake:nochange]',
    errorClass: undefined,
    usage: reported,
    changed: false,
  },
  {
    name: 'rate limit (429)',
    prompt: 'x [fake:rate_limit]',
    errorClass: 'rate_limit',
    usage: none,
    changed: false,
  },
  {
    name: 'overload (529)',
    prompt: 'x [fake:overloaded]',
    errorClass: 'overloaded',
    usage: none,
    changed: false,
  },
  {
    name: 'auth failure (invalid API key)',
    prompt: 'x [fake:bad_key]',
    errorClass: 'auth',
    usage: none,
    changed: false,
  },
  {
    name: 'context overflow (prompt is too long)',
    prompt: 'x [fake:context]',
    errorClass: 'context_overflow',
    usage: none,
    changed: false,
  },
  {
    // the Claude fake has no crash marker: kill it mid-run, as the OOM killer would
    name: 'crash (killed by SIGKILL)',
    prompt: 'x [fake:sleep=10000]',
    errorClass: 'crash',
    usage: none,
    changed: false,
    options: { killAfterMs: 300 },
  },
  {
    name: 'hang (timeout)',
    prompt: HANG_PROMPT,
    errorClass: 'timeout',
    usage: none,
    changed: false,
    hang: true,
  },
];

fakeSuite('ClaudeDriver against the fake claude CLI', new ClaudeDriver(), cases, { maxTurns: 20 });

describe('ClaudeDriver', () => {
  it('builds the print-mode command line with its caps and a private config dir', () => {
    // Act
    const cmd = new ClaudeDriver().command({
      prompt: 'Fix the bug',
      workdir: '/w/repo',
      homeDir: '/w/home',
      model: 'claude-sonnet-4-5',
      maxTurns: 20,
      maxBudgetUsd: 2.5,
      systemPrompt: 'You are a backend engineer.',
    });
    // Assert
    expect(cmd.args).toEqual([
      '-p',
      '--output-format',
      'json',
      '--permission-mode',
      'bypassPermissions',
      '--max-turns',
      '20',
      '--model',
      'claude-sonnet-4-5',
      '--max-budget-usd',
      '2.5',
      '--append-system-prompt',
      'You are a backend engineer.',
      '--',
      'Fix the bug',
    ]);
    expect(cmd.env).toEqual({
      CLAUDE_CONFIG_DIR: '/w/home/.claude',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      DISABLE_BUG_COMMAND: '1',
      IS_SANDBOX: '1',
    });
  });

  it('leaves ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN (local Anthropic-compatible servers) to the environment', () => {
    // Act
    const driver = new ClaudeDriver();
    const cmd = driver.command({ prompt: 'p', workdir: '/w/repo', homeDir: '/w/home', model: 'qwen3-coder' });
    // Assert: the driver's variables are applied last, so they must not override these
    expect(Object.keys(cmd.env).filter((k) => k.startsWith('ANTHROPIC_'))).toEqual([]);
    expect(driver.credentialEnv).toContain('ANTHROPIC_AUTH_TOKEN');
  });
});
