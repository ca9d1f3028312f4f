import { describe, expect, it } from '@jest/globals';
import {
  conflictKind,
  conflictPrompt,
  conflictRegions,
  hasConflictMarkers,
  landingBackoffMs,
  trainBranchFor,
  trainTip,
} from '../../../lib/core/merge-train.js';

const CONFLICTED = [
  'one',
  'two',
  'three',
  'four',
  '<<<<<<< HEAD',
  'five by the train',
  '||||||| parent of 1234567 (AutoDev: mark five)',
  'five',
  '=======',
  'five by the task',
  '>>>>>>> 1234567 (AutoDev: mark five)',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
].join('\n');

describe('merge train rules', () => {
  it('names the train branch after the prefix and the base branch', () => {
    expect(trainBranchFor('autodev/', 'main')).toBe('autodev/train/main');
    expect(trainBranchFor('bots/', 'release/2.x')).toBe('bots/train/release/2.x');
  });

  it('goes onto the train when it carries the base, else starts a new train from the base', () => {
    expect(trainTip('base', 'train', true)).toBe('train');
    expect(trainTip('base', 'train', false)).toBe('base');
    expect(trainTip('base', undefined, false)).toBe('base');
  });

  it('finds conflict marker lines, not lookalikes', () => {
    expect(hasConflictMarkers(CONFLICTED)).toBe(true);
    expect(hasConflictMarkers('a\n=======\nb')).toBe(true);
    expect(hasConflictMarkers('a\n========\nb\n<<<<<<<<<< not one')).toBe(false);
    expect(hasConflictMarkers('title\n=====\n')).toBe(false);
  });

  it('shows each conflict region with three lines around it, numbered as in the file', () => {
    const regions = conflictRegions(CONFLICTED);
    expect(regions.split('\n')[0]).toBe(' 2| two');
    expect(regions).toContain(' 5| <<<<<<< HEAD');
    expect(regions).toContain('10| five by the task');
    expect(regions.split('\n').at(-1)).toBe('14| eight');
    expect(regions).not.toContain('| one');
    expect(conflictRegions('no conflict\n')).toBe('');
  });

  it('joins regions that overlap and separates the others', () => {
    const two = `${CONFLICTED}\n${Array(10).fill('x').join('\n')}\n<<<<<<< HEAD\na\n=======\nb\n>>>>>>> c\nend`;
    expect(conflictRegions(two).split('\n…\n')).toHaveLength(2);
  });

  it('puts the task, the landing place and each conflicted file in the prompt, within a budget', () => {
    const prompt = conflictPrompt('Mark five', 'the merge train (autodev/train/main)', [
      { path: 'src/a.txt', kind: conflictKind('UU'), regions: conflictRegions(CONFLICTED) },
      { path: 'gone.txt', kind: conflictKind('DU'), regions: '' },
      { path: 'big.txt', kind: conflictKind('AA'), regions: 'y'.repeat(50_000) },
    ]);
    expect(prompt).toContain('## The task\n\nMark five');
    expect(prompt).toContain('Meanwhile other work landed on the merge train (autodev/train/main)');
    expect(prompt).toContain('### src/a.txt (both modified)\n\n```text\n');
    expect(prompt).toContain('five by the train');
    expect(prompt).toContain('### gone.txt (deleted by the other work)\n\nNo conflict markers');
    expect(prompt).toContain('### big.txt (both added)');
    expect(prompt.length).toBeLessThan(8_000);
  });
});

describe('landing after the train moved', () => {
  it('waits a jittered while that grows with the tries and stays under two seconds', () => {
    expect(landingBackoffMs(1, () => 0)).toBe(0);
    expect(landingBackoffMs(1, () => 0.999)).toBe(199);
    expect(landingBackoffMs(3, () => 0.5)).toBe(400);
    expect(landingBackoffMs(9, () => 0.999)).toBeLessThan(2_000);
  });
});
