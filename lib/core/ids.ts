import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lowercase

/**
 * A task id: 10 chars of millisecond time + 10 random chars (a lowercase ULID), so ids sort
 * by creation time and are safe in branch names, URLs and file names.
 */
export function newTaskId(now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let rand = '';
  for (const b of bytes) rand += ALPHABET[b % 32];
  return `t${time}${rand}`;
}

export const TASK_ID_PATTERN = /^t[0-9a-z]{20}$/;

/** The smallest id a task created at `ms` or later can have (ids sort by creation time). */
export function taskIdFloor(ms: number): string {
  return newTaskId(ms).slice(0, 11);
}
