import { spawnSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { branchNameProblem } from '../../../lib/core/git-ref.js';
import { TaskSubmission } from '../../../lib/core/schemas.js';

const REFUSED = [
  'a//b',
  'a/.b',
  '.a',
  'a.',
  '..',
  'a..b',
  'a.lock',
  'a.lock/b',
  'a/b.lock',
  '-a',
  '--upload-pack=x',
  'a b',
  'a~1',
  'a^',
  'a:b',
  'a?',
  'a*',
  'a[b',
  'a\\b',
  'a@{1}',
  '/a',
  'a/',
  'a\u0001b',
  'a\u007fb',
  'HEAD',
];
const ACCEPTED = [
  'main',
  'release/1.2',
  'feature/x-y_z',
  'a.b',
  'a@b',
  'v1.0.0',
  'a-',
  'ü',
  'a/b/c',
  'a.lockx',
];

/** What git itself says of a branch name: the oracle the pure rules are checked against. */
const gitAccepts = (name: string) =>
  spawnSync('git', ['check-ref-format', '--branch', name], { stdio: 'ignore' }).status === 0;

describe("git's branch name rules, in core", () => {
  it.each(REFUSED)('refuses %j, as git does', (name) => {
    expect(branchNameProblem(name)).toBeDefined();
    expect(gitAccepts(name)).toBe(false);
  });

  it('refuses "@", which git reads as HEAD wherever a revision is expected', () => {
    expect(branchNameProblem('@')).toMatch(/HEAD/);
  });

  it.each(ACCEPTED)('accepts %j, as git does', (name) => {
    expect(branchNameProblem(name)).toBeUndefined();
    expect(gitAccepts(name)).toBe(true);
  });

  it('puts the rule on the baseBranch field', () => {
    const parsed = TaskSubmission.safeParse({
      repo: 'https://github.com/a/b.git',
      prompt: 'x',
      baseBranch: 'a//b',
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['baseBranch']);
    expect(parsed.error?.issues[0]?.message).toMatch(/holds "\/\/"/);
  });
});
