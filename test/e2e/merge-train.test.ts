import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Task } from '../../lib/core/schemas.js';
import { type GitHttpServer, startGitHttpServer } from '../support/git-http-server.js';
import {
  cli,
  gitIn,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
  until,
} from '../support/local-platform.js';

/**
 * The merge train through the local platform: a bare repository served over smart HTTP (no forge, and
 * `AUTODEV_MERGE_TRAIN=on`, so the platform keeps the train branch `autodev/train/main`), tasks on it running at once with the
 * fake claude, each changing the same file. Their agents finish in a known order (sleeps); the
 * order is checked from the attempts' recorded times.
 */

const APP = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'omega', ''].join(
  '\n',
);
const AUTODEV_YML = [
  'gates:',
  '  - name: no-markers',
  `    run: "! grep -qE '^(<<<<<<<|=======|>>>>>>>)' app.txt"`,
  '    timeoutSeconds: 30',
  'repairRounds: 0',
  'draftOnFailure: false',
  '',
].join('\n');

describe('merge train: tasks on one repository land one after the other (real server, smart HTTP remote)', () => {
  let dir: string;
  let bare: string;
  let git: GitHttpServer;
  let server: RunningServer;
  let token: string;
  let repo: string;

  const api = async (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    });
  const getTask = async (id: string) => (await (await api(`/v1/tasks/${id}`)).json()) as Task;
  const ended = (id: string) =>
    until(
      async () => {
        const t = await getTask(id);
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
      },
      60_000,
      `task ${id} to end`,
    );
  const submit = async (prompt: string, more: Record<string, unknown> = {}) => {
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({ repo, prompt, provider: 'claude', ...more }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Task;
  };
  const logs = async (id: string) => (await api(`/v1/tasks/${id}/logs`)).text();
  const remote = (args: string[]) => gitIn(bare, args);
  const head = (branch: string) => {
    try {
      return remote(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).trim();
    } catch {
      return undefined;
    }
  };
  const show = (rev: string, path: string) => remote(['show', `${rev}:${path}`]);

  beforeAll(async () => {
    dir = tempDir('autodev-train-');
    const srv = join(dir, 'srv');
    mkdirSync(join(srv, 'acme'), { recursive: true });
    const scratch = join(dir, 'scratch');
    mkdirSync(scratch);
    const made = makeRemote(scratch, { 'app.txt': APP, '.autodev.yml': AUTODEV_YML });
    bare = join(srv, 'acme', 'app.git');
    gitIn(dir, ['clone', '--quiet', '--bare', made, bare]);
    git = await startGitHttpServer({ root: srv });
    repo = git.urlFor('acme/app.git');
    const home = join(dir, 'home');
    mkdirSync(home);
    server = await startServer(platformEnv(home, { AUTODEV_CONCURRENCY: '4', AUTODEV_MERGE_TRAIN: 'on' }));
    const minted = await cli(['token', '--tenant', 'acme', '--role', 'operator'], server.env);
    expect(minted.code).toBe(0);
    token = minted.stdout.trim();
  });

  afterAll(async () => {
    await server?.stop();
    await git?.close();
  });

  it('rebases each later task onto the ones that landed, gates it again, gives a conflict to its agent once, and fails an unresolved one with merge_conflict', async () => {
    // Arrange: the base the tasks start from
    const base = head('main') as string;

    // Act: four tasks on the same file at once, finishing about 2 s apart
    const a = await submit('Mark alpha [fake:replace=app.txt:alpha:alpha by A]');
    const b = await submit('Mark omega [fake:replace=app.txt:omega:omega by B] [fake:sleep=2000]');
    const c = await submit(
      'Mark alpha too [fake:replace=app.txt:alpha:alpha by C] [fake:sleep=4000] [fake:resolve=both]',
    );
    const d = await submit('Mark omega too [fake:replace=app.txt:omega:omega by D] [fake:sleep=6000]');
    const [ta, tb, tc, td] = await Promise.all([a, b, c, d].map((t) => ended(t.id)));
    const [la, lb, lc, ld] = (await Promise.all([a, b, c, d].map((t) => logs(t.id)))) as [
      string,
      string,
      string,
      string,
    ];

    // Assert: they ran at once (each started before the first one ended) and ended in order
    const started = [ta, tb, tc, td].map((t) => Date.parse(t?.attempts[0]?.startedAt ?? ''));
    const endedAt = [ta, tb, tc, td].map((t) => Date.parse(t?.attempts[0]?.endedAt ?? ''));
    for (const s of started) expect(s).toBeLessThan(endedAt[0] as number);
    // A, B and C landed in that order; D's conflict was with B's landed work, so it ended after B
    const [endA, endB, endC, endD] = endedAt as [number, number, number, number];
    expect(endA).toBeLessThan(endB);
    expect(endB).toBeLessThan(endC);
    expect(endB).toBeLessThan(endD);

    // A landed first: its branch is the train's first car, on top of the base
    expect(ta).toMatchObject({ status: 'succeeded', branch: `autodev/${a.id}` });
    expect(head(`autodev/${a.id}`)).toBe(ta?.commit);
    expect(remote(['rev-parse', `${ta?.commit}^`]).trim()).toBe(base);
    expect(la).not.toContain('rebasing onto');

    // B: rebased onto A without a conflict, its gates passed again, the train advanced to it
    expect(tb).toMatchObject({ status: 'succeeded' });
    expect(remote(['rev-parse', `${tb?.commit}^`]).trim()).toBe(ta?.commit);
    expect(lb).toContain(
      `merge train: the merge train (autodev/train/main) moved to ${ta?.commit?.slice(0, 12)}`,
    );
    expect(lb).toContain('running the quality gates again');
    expect(lb.match(/gate no-markers: passed/g)).toHaveLength(2);
    expect(tb?.gates).toEqual([expect.objectContaining({ name: 'no-markers', ok: true })]);
    expect(show(tb?.commit as string, 'app.txt')).toBe(
      APP.replace('alpha', 'alpha by A').replace('omega', 'omega by B'),
    );
    expect(lb).not.toContain('conflict round');

    // C: a true conflict with A on the first line, given to its agent for one round, resolved, gated again
    expect(tc).toMatchObject({ status: 'succeeded' });
    expect(remote(['rev-parse', `${tc?.commit}^`]).trim()).toBe(tb?.commit);
    expect(lc).toContain('merge train: conflict in app.txt; the agent gets it for one round');
    expect(lc).toContain('conflict round: starting claude with the merge conflict');
    expect(lc).toContain('the conflict round resolved app.txt');
    expect(lc.match(/gate no-markers: passed/g)).toHaveLength(2);
    // what its agent was given: the conflict, both sides of it (the agent wrote it into the change)
    const seen = show(tc?.commit as string, 'MERGE_CONFLICT.md');
    expect(seen).toContain('### app.txt (both modified)');
    expect(seen).toMatch(/<<<<<<< .*\n.*alpha by A/);
    expect(seen).toMatch(/=======\n.*alpha by C\n.*>>>>>>> /);
    expect(
      show(tc?.commit as string, 'app.txt')
        .split('\n')
        .slice(0, 2),
    ).toEqual(['alpha by A', 'alpha by C']);

    // D: conflicts with B, its agent leaves the markers: merge_conflict, nothing of it pushed
    expect(td).toMatchObject({ status: 'failed', error: { code: 'merge_conflict' } });
    expect(td?.error?.message).toContain(
      'the conflict round did not resolve it (conflict markers are left in app.txt)',
    );
    expect(ld).toContain('merge train: conflict in app.txt; the agent gets it for one round');
    expect(ld).toMatch(/I could not resolve the conflict[^\n]*omega by B/);
    expect(head(`autodev/${d.id}`)).toBeUndefined();

    // the train holds A, B and C in the order they landed, and nothing else
    expect(head('autodev/train/main')).toBe(tc?.commit);
    expect(
      remote(['rev-list', '--reverse', `${base}..autodev/train/main`])
        .trim()
        .split('\n'),
    ).toEqual([ta?.commit, tb?.commit, tc?.commit]);
  }, 90_000);

  it('a task started after others landed starts on the train, so it needs no rebase', async () => {
    // Arrange
    const train = head('autodev/train/main') as string;

    // Act
    const e = await submit('Mark gamma [fake:replace=app.txt:gamma:gamma by E]');
    const te = await ended(e.id);

    // Assert
    expect(te).toMatchObject({ status: 'succeeded' });
    expect(remote(['rev-parse', `${te.commit}^`]).trim()).toBe(train);
    const log = await logs(e.id);
    expect(log).toContain('from the merge train autodev/train/main');
    expect(log).not.toContain('rebasing onto');
    expect(head('autodev/train/main')).toBe(te.commit);
  }, 60_000);

  it('serializes tasks that declare the same files: the later one waits for the earlier one to end', async () => {
    // Act: two tasks on the same line that say so, and one on another file beside them
    const first = await submit('Mark delta [fake:replace=app.txt:delta:delta by F] [fake:sleep=1000]', {
      files: ['app.txt'],
    });
    const second = await submit('Mark delta again [fake:replace=app.txt:delta by F:delta by F and G]', {
      files: ['app.txt', 'docs/'],
    });
    const beside = await submit('Write the notes [fake:edit=docs-notes.md] [fake:sleep=300]', {
      files: ['docs-notes.md'],
    });
    const [tf, tg, tb] = await Promise.all([first, second, beside].map((t) => ended(t.id)));

    // Assert: the second waited (blocked) for the first and started after it ended; the other ran beside
    expect(second).toMatchObject({ status: 'blocked', waitsFor: [first.id], files: ['app.txt', 'docs/'] });
    expect(beside.status).toBe('queued');
    expect(beside.waitsFor).toBeUndefined();
    expect([tf?.status, tg?.status, tb?.status]).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const firstEnded = Date.parse(tf?.attempts[0]?.endedAt ?? '');
    expect(Date.parse(tg?.attempts[0]?.startedAt ?? '')).toBeGreaterThanOrEqual(firstEnded);
    expect(Date.parse(tb?.attempts[0]?.startedAt ?? '')).toBeLessThan(firstEnded);
    // it started on top of the first one's change: no conflict (the task beside may have landed meanwhile)
    expect(await logs(second.id)).not.toContain('conflict');
    expect(remote(['merge-base', '--is-ancestor', tf?.commit as string, tg?.commit as string])).toBe('');
    expect(show(tg?.commit as string, 'app.txt')).toContain('delta by F and G');
  }, 60_000);

  it('refuses declared files that leave the repository, naming the field', async () => {
    // Act
    const res = await api('/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({ repo, prompt: 'x', files: ['src/../../etc/passwd'] }),
    });

    // Assert
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { field: string }[] } };
    expect(body.error.details.map((d) => d.field)).toEqual(['files.0']);
  });
});
