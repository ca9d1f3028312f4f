import { describe, expect, it } from '@jest/globals';
import { ConflictError } from '../../../lib/core/errors.js';
import {
  backoffMs,
  canTransition,
  chooseProvider,
  decideAfterAttempt,
  transition,
} from '../../../lib/core/lifecycle.js';
import { BUILT_IN_ROLES } from '../../../lib/core/roles.js';
import type { Attempt, Task } from '../../../lib/core/schemas.js';
import { makeTask } from '../../support/tasks.js';

const role = {
  ...(BUILT_IN_ROLES.backend as NonNullable<typeof BUILT_IN_ROLES.backend>),
  providers: ['claude', 'codex', 'gemini'],
  maxAttempts: 3,
};
const attempt = (provider: string, n: number, errorClass?: Attempt['errorClass']): Attempt => ({
  number: n,
  provider,
  startedAt: new Date().toISOString(),
  outcome: errorClass ? 'failed' : 'succeeded',
  errorClass,
});
const running = (attempts: Attempt[], extra: Partial<Task> = {}) =>
  makeTask({ status: 'running', attempts, provider: attempts.at(-1)?.provider, ...extra });
const everything = () => true;

describe('the task lifecycle', () => {
  it('allows only the transitions in the table', () => {
    expect(canTransition('queued', 'running')).toBe(true);
    expect(canTransition('running', 'succeeded')).toBe(true);
    expect(canTransition('succeeded', 'running')).toBe(false);
    expect(canTransition('cancelled', 'running')).toBe(false);
  });

  it('bumps the version on every transition and refuses illegal ones', () => {
    const t = makeTask();
    const next = transition(t, 'running', {}, new Date());
    expect(next.version).toBe(t.version + 1);
    expect(() => transition({ ...t, status: 'succeeded' }, 'running', {}, new Date())).toThrow(ConflictError);
  });
});

describe('decisions after an attempt', () => {
  it('finishes on success', () => {
    expect(
      decideAfterAttempt({
        task: running([attempt('claude', 1)]),
        role,
        result: { ok: true },
        available: everything,
      }),
    ).toEqual({
      kind: 'succeed',
    });
  });

  it('cancels when a cancel was requested, whatever the result', () => {
    const task = running([attempt('claude', 1, 'crash')], { cancelRequested: true });
    expect(
      decideAfterAttempt({ task, role, result: { ok: false, errorClass: 'crash' }, available: everything })
        .kind,
    ).toBe('cancel');
  });

  it('fails over to the next provider on a rate limit', () => {
    const d = decideAfterAttempt({
      task: running([attempt('claude', 1, 'rate_limit')]),
      role,
      result: { ok: false, errorClass: 'rate_limit' },
      available: everything,
    });
    expect(d).toMatchObject({ kind: 'retry', provider: 'codex', delayMs: 0 });
  });

  it('retries the same provider after a pause when no other is available', () => {
    const d = decideAfterAttempt({
      task: running([attempt('claude', 1, 'overloaded')]),
      role,
      result: { ok: false, errorClass: 'overloaded' },
      available: (p) => p === 'claude',
      random: () => 0.5,
      policy: { baseDelayMs: 1000, maxDelayMs: 60_000 },
    });
    expect(d).toEqual({
      kind: 'retry',
      provider: 'claude',
      delayMs: 500,
      reason: expect.stringMatching(/retrying/),
    });
  });

  it('does not retry auth failures on the same provider', () => {
    const d = decideAfterAttempt({
      task: running([attempt('claude', 1, 'auth')]),
      role,
      result: { ok: false, errorClass: 'auth', message: 'Invalid API key' },
      available: (p) => p === 'claude',
    });
    expect(d).toMatchObject({ kind: 'fail', code: 'auth' });
  });

  it('fails a workspace fault at once with its own code and message, without failing over', () => {
    const d = decideAfterAttempt({
      task: running([attempt('claude', 1, 'workspace')]),
      role,
      result: { ok: false, errorClass: 'workspace', message: 'The repository /x does not exist.' },
      available: everything,
    });
    expect(d).toEqual({ kind: 'fail', code: 'workspace', message: 'The repository /x does not exist.' });
  });

  it('never retries a context overflow', () => {
    const d = decideAfterAttempt({
      task: running([attempt('claude', 1, 'context_overflow')]),
      role,
      result: { ok: false, errorClass: 'context_overflow' },
      available: everything,
    });
    expect(d).toMatchObject({ kind: 'fail', code: 'context_overflow' });
  });

  it('fails over from a requested provider (a preference), not from a pinned one', () => {
    const preferred = decideAfterAttempt({
      task: running([attempt('claude', 1, 'rate_limit')], { requestedProvider: 'claude' }),
      role,
      result: { ok: false, errorClass: 'rate_limit' },
      available: everything,
      random: () => 0,
    });
    expect(preferred).toMatchObject({ kind: 'retry', provider: 'codex' });
    const d = decideAfterAttempt({
      task: running([attempt('claude', 1, 'rate_limit')], { requestedProvider: 'claude', pin: true }),
      role,
      result: { ok: false, errorClass: 'rate_limit' },
      available: everything,
      random: () => 0,
    });
    expect(d).toMatchObject({ kind: 'retry', provider: 'claude' });
  });

  it('fails when the attempts are used up, saying how many', () => {
    const task = running([
      attempt('claude', 1, 'timeout'),
      attempt('claude', 2, 'timeout'),
      attempt('claude', 3, 'timeout'),
    ]);
    const d = decideAfterAttempt({
      task,
      role,
      result: { ok: false, errorClass: 'timeout' },
      available: everything,
    });
    expect(d).toMatchObject({
      kind: 'fail',
      code: 'timeout',
      message: expect.stringMatching(/after 3 attempts/),
    });
  });
});

describe('backoff with full jitter', () => {
  it('grows exponentially up to the cap and stays within [0, ceiling)', () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(1, policy, () => 0.999)).toBe(99);
    expect(backoffMs(3, policy, () => 0.999)).toBe(399);
    expect(backoffMs(10, policy, () => 0.999)).toBe(999);
    expect(backoffMs(4, policy, () => 0)).toBe(0);
  });
});

describe('provider choice', () => {
  it('takes the first available provider of the role, skipping excluded ones', () => {
    expect(chooseProvider({}, role, (p) => p !== 'claude')).toBe('codex');
    expect(chooseProvider({}, role, everything, ['claude', 'codex'])).toBe('gemini');
    expect(chooseProvider({}, role, () => false)).toBeUndefined();
    expect(chooseProvider({ requestedProvider: 'gemini' }, role, () => false)).toBe('gemini');
    // "auto" names no provider: the role's order
    expect(chooseProvider({ requestedProvider: 'auto' }, role, everything)).toBe('claude');
  });
});
