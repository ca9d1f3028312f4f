import { describe, expect, it } from '@jest/globals';
import {
  claimsOverlap,
  DeclaredFiles,
  earlierClaims,
  pathsOverlap,
  waitOver,
} from '../../../lib/core/file-claims.js';
import type { ListQuery } from '../../../lib/core/ports.js';
import type { Task } from '../../../lib/core/schemas.js';
import { releaseBlocked } from '../../../lib/core/workflow.js';
import { makeTask } from '../../support/tasks.js';

const on = (files: string[], more: Partial<Task> = {}) =>
  makeTask({ repo: 'https://git.example/acme/shop.git', files, ...more });

describe('tasks serialized by the files they declare', () => {
  it('overlaps equal paths and a folder with what it holds, not mere prefixes', () => {
    expect(pathsOverlap('src/a.ts', 'src/a.ts')).toBe(true);
    expect(pathsOverlap('src/', 'src/a.ts')).toBe(true);
    expect(pathsOverlap('src/a.ts', 'src')).toBe(true);
    expect(pathsOverlap('src/a.ts', 'src/a.tsx')).toBe(false);
    expect(pathsOverlap('docs', 'docs-notes.md')).toBe(false);
  });

  it('compares tasks on the same repository and base branch only', () => {
    expect(claimsOverlap(on(['a']), on(['b', 'a']))).toBe(true);
    expect(claimsOverlap(on(['a']), on(['a'], { repo: 'https://git.example/acme/other.git' }))).toBe(false);
    expect(claimsOverlap(on(['a']), on(['a'], { baseBranch: 'release' }))).toBe(false);
    expect(claimsOverlap(on(['a']), makeTask({ repo: 'https://git.example/acme/shop.git' }))).toBe(false);
  });

  it('refuses paths that leave the repository or are absolute', () => {
    expect(DeclaredFiles.safeParse(['src/a.ts', 'docs/']).success).toBe(true);
    for (const bad of [['/etc/passwd'], ['a/../../b'], ['./a'], [''], ['a\nb'], []])
      expect(DeclaredFiles.safeParse(bad).success).toBe(false);
  });

  it('finds the earlier tasks not ended whose files overlap, over every page', async () => {
    // Arrange: a store listing by status, two items a page
    const tasks = [
      on(['app.txt'], { id: 'running1', status: 'running' }),
      on(['other.txt'], { id: 'running2', status: 'running' }),
      on(['app.txt'], { id: 'running3', status: 'running' }),
      on(['src/'], { id: 'queued1', status: 'queued' }),
      on(['app.txt'], { id: 'done1', status: 'succeeded' }),
    ];
    const store = {
      list: async (_tenant: string, q: ListQuery) => {
        const all = tasks.filter((t) => t.status === q.status);
        const from = Number(q.cursor ?? 0);
        const next = from + 2;
        return { items: all.slice(from, next), nextCursor: next < all.length ? String(next) : undefined };
      },
    };

    // Act
    const ids = await earlierClaims(store, 'acme', on(['app.txt', 'src/x.ts']));

    // Assert
    expect(ids).toEqual(['queued1', 'running1', 'running3']);
    expect(await earlierClaims(store, 'acme', on([]))).toEqual([]);
  });

  it('keeps a waiting task blocked until what it waits for ended, however it ended', () => {
    const now = new Date();
    const waiting = on(['app.txt'], { status: 'blocked', waitsFor: ['x'] });
    expect(waitOver([on(['app.txt'], { status: 'running' })])).toBe(false);
    expect(releaseBlocked(waiting, [], now, [on(['a'], { status: 'running' })])).toBeUndefined();
    expect(releaseBlocked(waiting, [], now, [on(['a'], { status: 'failed' })])?.status).toBe('queued');
    expect(releaseBlocked(waiting, [], now, [undefined])?.status).toBe('queued');
    // a failed dependency still fails it at once
    expect(
      releaseBlocked(waiting, [on([], { status: 'failed' })], now, [on(['a'], { status: 'running' })])
        ?.status,
    ).toBe('failed');
  });
});
