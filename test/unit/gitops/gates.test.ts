import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ValidationError } from '../../../lib/core/errors.js';
import {
  AUTODEV_FILE,
  type GateResult,
  parseAutodevConfig,
  readAutodevConfig,
  repairPrompt,
  runGates,
  tail,
} from '../../../lib/worker/gates.js';
import { isAlive, tempDir, until } from '../../support/local-platform.js';

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' };

describe('.autodev.yml', () => {
  it('reads gates, repair rounds and the draft switch, with defaults', () => {
    // Arrange
    const text = [
      'gates:',
      '  - name: test',
      '    run: npm test',
      '    timeoutSeconds: 300',
      '  - name: lint',
      '    run: npx biome check .',
      'repairRounds: 2',
    ].join('\n');

    // Act
    const config = parseAutodevConfig(text);

    // Assert
    expect(config).toEqual({
      gates: [
        { name: 'test', run: 'npm test', timeoutSeconds: 300 },
        { name: 'lint', run: 'npx biome check .', timeoutSeconds: 600 },
      ],
      repairRounds: 2,
      draftOnFailure: true,
    });
  });

  it('is optional: no file means no gates', () => {
    expect(readAutodevConfig(tempDir('autodev-gates-'))).toEqual({
      gates: [],
      repairRounds: 1,
      draftOnFailure: true,
    });
  });

  it('is read from the worktree root', () => {
    const dir = tempDir('autodev-gates-');
    writeFileSync(join(dir, AUTODEV_FILE), 'gates: [{name: t, run: "true"}]\ndraftOnFailure: false\n');
    expect(readAutodevConfig(dir)).toMatchObject({
      gates: [{ name: 't', run: 'true' }],
      draftOnFailure: false,
    });
  });

  it.each([
    ['a gate without a command', 'gates: [{name: test}]', /gates\.0\.run/],
    ['a time limit of zero', 'gates: [{name: t, run: x, timeoutSeconds: 0}]', /gates\.0\.timeoutSeconds/],
    ['too many repair rounds', 'repairRounds: 50', /repairRounds/],
    ['an unknown key', 'gates: []\nrepairs: 1', /repairs/],
    ['two gates of one name', 'gates: [{name: t, run: a}, {name: t, run: b}]', /unique/],
    ['YAML that does not parse', 'gates: [unclosed', /not valid YAML/],
  ])('refuses %s with a message naming it', (_what, text, message) => {
    expect(() => parseAutodevConfig(text)).toThrow(ValidationError);
    expect(() => parseAutodevConfig(text)).toThrow(message);
  });
});

describe('runGates', () => {
  it('runs every gate in the worktree and reports exit code, time and output', async () => {
    // Arrange
    const dir = tempDir('autodev-gates-');
    writeFileSync(join(dir, 'marker.txt'), 'here\n');
    const gates = [
      { name: 'reads the worktree', run: 'cat marker.txt', timeoutSeconds: 10 },
      { name: 'fails', run: 'echo out; echo err >&2; exit 3', timeoutSeconds: 10 },
      { name: 'runs after a failure', run: 'echo still ran', timeoutSeconds: 10 },
    ];

    // Act
    const results = await runGates(dir, gates, { env });

    // Assert
    expect(results.map((r) => [r.name, r.ok, r.exitCode])).toEqual([
      ['reads the worktree', true, 0],
      ['fails', false, 3],
      ['runs after a failure', true, 0],
    ]);
    expect(results[0]?.output).toBe('here');
    expect(results[1]?.output).toBe('out\nerr');
    expect(results.every((r) => r.durationMs >= 0 && !r.timedOut)).toBe(true);
  });

  it('kills a gate that runs past its time limit, with everything it started', async () => {
    // Arrange
    const dir = tempDir('autodev-gates-');
    const pidFile = join(dir, 'child.pid');
    const gate = {
      name: 'hangs',
      run: `sleep 60 & echo $! > ${pidFile}; echo started; wait`,
      timeoutSeconds: 1,
    };
    const started = Date.now();

    // Act
    const [result] = await runGates(dir, [gate], { env, killGraceMs: 500 });

    // Assert
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result).toMatchObject({
      name: 'hangs',
      ok: false,
      timedOut: true,
      exitCode: null,
      output: 'started',
    });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await until(async () => !isAlive(pid), 5000, 'the background sleep to be killed');
  });

  it('keeps the end of a long output', async () => {
    const dir = tempDir('autodev-gates-');
    const [result] = await runGates(
      dir,
      [{ name: 'noisy', run: 'seq 1 20000; exit 1', timeoutSeconds: 10 }],
      {
        env,
        outputTailChars: 200,
      },
    );
    expect(result?.output.length).toBeLessThanOrEqual(202);
    expect(result?.output.endsWith('19999\n20000')).toBe(true);
    expect(result?.output.startsWith('…\n')).toBe(true);
  });

  it('stops starting gates once the signal is aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    expect(
      await runGates(tempDir(), [{ name: 't', run: 'true', timeoutSeconds: 5 }], { env, signal: ac.signal }),
    ).toEqual([]);
  });
});

describe('repairPrompt', () => {
  const failure = (name: string, output: string, extra: Partial<GateResult> = {}): GateResult => ({
    name,
    ok: false,
    exitCode: 1,
    timedOut: false,
    durationMs: 10,
    output,
    ...extra,
  });

  it('gives the task and each failing gate with its output, and leaves passing gates out', () => {
    const prompt = repairPrompt('Add a /health endpoint', [
      failure('test', 'FAIL test/health.test.ts\nexpected 200, got 404'),
      { ...failure('lint', 'all good'), ok: true, exitCode: 0 },
      failure('types', '', { timedOut: true, exitCode: null }),
    ]);
    expect(prompt).toContain('Add a /health endpoint');
    expect(prompt).toContain('### test failed with exit code 1');
    expect(prompt).toContain('expected 200, got 404');
    expect(prompt).toContain('### types ran out of time');
    expect(prompt).not.toContain('### lint');
    expect(prompt).toMatch(/Do not weaken, skip or delete the checks/);
  });

  it('trims long outputs to their ends, within a total budget', () => {
    const long = `${'noise line\n'.repeat(5000)}the real error`;
    const prompt = repairPrompt('Task', [failure('a', long), failure('b', long)]);
    expect(prompt.length).toBeLessThan(14_000);
    expect(prompt.match(/the real error/g)).toHaveLength(2);
  });

  it('fences output so that backticks in it cannot end the block', () => {
    const prompt = repairPrompt('Task', [failure('md', 'bad:\n```\nx')]);
    expect(prompt).toContain('````text\nbad:\n```\nx\n````');
  });
});

describe('tail', () => {
  it('returns short text as it is, without trailing blank space or colour codes', () => {
    expect(tail('\u001b[31mred\u001b[0m\n\n', 100)).toBe('red');
  });
});
