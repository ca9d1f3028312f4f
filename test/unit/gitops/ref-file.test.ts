import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { readRefFile } from '../../../lib/worker/workspace.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

/** A git dir with `refs/remotes/origin/main` loose and `refs/remotes/origin/old` packed. */
function repo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'autodev-refs-'));
  mkdirSync(join(dir, 'refs', 'remotes', 'origin'), { recursive: true });
  writeFileSync(join(dir, 'refs', 'remotes', 'origin', 'main'), `${A}\n`);
  writeFileSync(
    join(dir, 'packed-refs'),
    `# pack-refs with: peeled fully-peeled sorted\n${B} refs/remotes/origin/old\n${A} refs/tags/v1\n^${B}\n`,
  );
  return dir;
}

describe('readRefFile (a branch commit without starting git)', () => {
  it('reads a loose ref, then packed-refs, and leaves anything else to git', () => {
    // Arrange
    const dir = repo();
    writeFileSync(join(dir, 'refs', 'remotes', 'origin', 'HEAD'), 'ref: refs/remotes/origin/main\n');
    // Act / Assert
    expect(readRefFile(dir, 'refs/remotes/origin/main')).toBe(A);
    expect(readRefFile(dir, 'refs/remotes/origin/old')).toBe(B);
    expect(readRefFile(dir, 'refs/remotes/origin/missing')).toBeUndefined();
    // a symbolic ref is git's to resolve
    expect(readRefFile(dir, 'refs/remotes/origin/HEAD')).toBeUndefined();
  });

  it('never reads outside the repository, whatever the name', () => {
    // Arrange: a file outside that looks like a ref
    const dir = repo();
    writeFileSync(join(dir, '..', `${A.slice(0, 8)}-outside`), `${B}\n`);
    // Act / Assert
    expect(readRefFile(dir, `refs/remotes/origin/../../../../${A.slice(0, 8)}-outside`)).toBeUndefined();
    expect(readRefFile(dir, 'refs/remotes/origin/.hidden')).toBeUndefined();
    expect(readRefFile(dir, '/etc/hostname')).toBeUndefined();
  });
});
