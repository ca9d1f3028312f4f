import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { FAKES_BIN, makeWorkspace } from './harness.js';

const run = promisify(execFile);

/** Runs a fake CLI in a fresh workspace; resolves with its exit code and output, whatever the code. */
async function fake(bin: string, args: string[], env: Record<string, string> = {}, stdin?: string) {
  const ws = makeWorkspace();
  const child = run(join(FAKES_BIN, bin), args, {
    cwd: ws.workdir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.homeDir, ...env },
  });
  child.child.stdin?.end(stdin ?? '');
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr, ...ws };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, ...ws };
  }
}

const git = async (cwd: string, ...args: string[]) => (await run('git', args, { cwd })).stdout;

// The fakes must fail where the real CLIs fail, or the driver tests would prove nothing.
describe('fake CLIs refuse what the real ones refuse', () => {
  it.concurrent.each([
    ['codex', ['exec', '--json', '--full-auto', '-'], 2, /unexpected argument '--full-auto'/],
    ['gemini', ['-p', 'x', '--output-format', 'json', '--bogus'], 1, /Unknown argument: bogus/],
    ['cursor-agent', ['-p', '--bogus', 'x'], 1, /unknown option '--bogus'/],
    ['opencode', ['run', '--format', 'json', '--bogus', 'x'], 1, /Unknown argument: bogus/],
    ['aider', ['--message', 'x', '--bogus'], 2, /unrecognized arguments: --bogus/],
  ])('%s rejects an unknown flag', async (bin, args, code, message) => {
    const r = await fake(bin, args, { ANTHROPIC_API_KEY: 'k' });
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
  });

  it.concurrent('codex fails when CODEX_HOME does not exist', async () => {
    const r = await fake('codex', ['exec', '--json', '-'], { CODEX_HOME: '/nonexistent/codex-home' }, 'hi');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CODEX_HOME points to/);
  });

  it.concurrent('codex cannot edit without bypassing its sandbox', async () => {
    const r = await fake('codex', ['exec', '--json', '-'], { CODEX_API_KEY: 'k' }, 'x [fake:edit=A.md]');
    expect(r.code).toBe(0);
    expect(existsSync(join(r.workdir, 'A.md'))).toBe(false);
  });

  it.concurrent('gemini refuses an untrusted workspace with exit 55 and the error JSON on stderr', async () => {
    const r = await fake('gemini', ['-p', 'x', '--output-format', 'json', '--approval-mode=yolo'], {
      GEMINI_API_KEY: 'k',
    });
    expect(r.code).toBe(55);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr).error.type).toBe('FatalUntrustedWorkspaceError');
  });

  it.concurrent('gemini has no edit tools without yolo', async () => {
    const r = await fake('gemini', ['-p', 'x [fake:edit=A.md]', '--output-format', 'json', '--skip-trust'], {
      GEMINI_API_KEY: 'k',
    });
    expect(r.code).toBe(0);
    expect(existsSync(join(r.workdir, 'A.md'))).toBe(false);
  });

  it.concurrent('cursor-agent asks for workspace trust without --trust', async () => {
    const r = await fake('cursor-agent', ['-p', '--output-format', 'json', 'x'], { CURSOR_API_KEY: 'k' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/Workspace Trust Required/);
  });

  it.concurrent('opencode is not allowed to write without --auto', async () => {
    const r = await fake('opencode', ['run', '--format', 'json', 'x [fake:edit=A.md]']);
    expect(r.code).toBe(0);
    expect(existsSync(join(r.workdir, 'A.md'))).toBe(false);
  });

  it.concurrent('aider commits by itself, edits .gitignore and leaves history files without the driver flags', async () => {
    const r = await fake('aider', ['--message', 'x [fake:edit=A.md]', '--yes-always'], {
      ANTHROPIC_API_KEY: 'k',
    });
    expect(r.code).toBe(0);
    expect(await git(r.workdir, 'log', '--format=%s', '-1')).toBe('docs: Update A.md\n');
    expect(readFileSync(join(r.workdir, '.gitignore'), 'utf8')).toBe('.aider*\n');
    expect(existsSync(join(r.workdir, '.aider.chat.history.md'))).toBe(true);
  });
});
