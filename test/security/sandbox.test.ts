import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  BWRAP,
  DEFAULT_AGENT_USER,
  handOver,
  resolveSandbox,
  type Sandbox,
  type SandboxRun,
  sandboxCommand,
} from '../../lib/worker/sandbox.js';

// not under /tmp: the sandbox has a /tmp of its own
const scratch = mkdtempSync('/var/tmp/autodev-sandbox-test-');
chmodSync(scratch, 0o755);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A run's folders, as an attempt has them. */
function newRun(name: string): SandboxRun {
  const base = join(scratch, name);
  const r = { workdir: join(base, 'work'), home: join(base, 'home'), tmp: join(base, 'tmp'), readOnly: [] };
  for (const d of [r.workdir, r.home, r.tmp]) mkdirSync(d, { recursive: true });
  return r;
}

/** Runs a shell script in the sandbox: its exit code and what it printed. */
async function inSandbox(s: Sandbox, r: SandboxRun, script: string) {
  await handOver(s, r);
  const cmd = sandboxCommand(s, r, '/bin/sh', ['-c', script], { PATH: '/usr/bin:/bin' });
  const out = spawnSync(cmd.file, cmd.args, {
    cwd: r.workdir,
    env: cmd.env,
    uid: cmd.uid,
    gid: cmd.gid,
    encoding: 'utf8',
  });
  return { code: out.status, out: `${out.stdout}${out.stderr}`.trim() };
}

describe('the sandbox (bubblewrap)', () => {
  it('is what this machine resolves to, as nobody', async () => {
    const s = await resolveSandbox({ setting: 'on' });
    expect(s).toMatchObject({ mode: 'bwrap', bwrap: BWRAP, user: DEFAULT_AGENT_USER });
  });

  it('masks a hidden folder that lies inside a folder it shows read-only', async () => {
    // Arrange: a tool folder shown to agents, with the server's data inside it
    const shown = join(scratch, 'shown');
    mkdirSync(join(shown, 'data'), { recursive: true });
    writeFileSync(join(shown, 'tool.txt'), 'a tool\n');
    writeFileSync(join(shown, 'data', 'signing-key'), 'secret\n');
    chmodSync(join(shown, 'data', 'signing-key'), 0o644);
    const s = (await resolveSandbox({
      setting: 'on',
      readOnly: [shown],
      hidden: [join(shown, 'data')],
    })) as Sandbox;
    // Act
    const r = await inSandbox(
      s,
      newRun('mask'),
      `cat '${join(shown, 'tool.txt')}'; ls -A '${join(shown, 'data')}' | wc -l; touch '${join(shown, 'x')}' || echo read-only`,
    );
    // Assert
    expect(r.out.split('\n').filter((l) => !l.includes('touch'))).toEqual(['a tool', '0', 'read-only']);
  });

  it("reaches a run's folders that lie inside a masked folder (the CLI installed above AUTODEV_HOME)", async () => {
    // Arrange: AUTODEV_HOME (with the run in it) inside a folder shown read-only
    const shown = join(scratch, 'cli');
    const home = join(shown, 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'signing-key'), 'secret\n');
    const s = await resolveSandbox({ setting: 'on', readOnly: [shown], hidden: [home] });
    const base = join(home, 'workspaces', 't1');
    const r: SandboxRun = {
      workdir: join(base, 'w'),
      home: join(base, 'h'),
      tmp: join(base, 't'),
      readOnly: [],
    };
    for (const d of [r.workdir, r.home, r.tmp]) mkdirSync(d, { recursive: true });
    // Act
    const out = await inSandbox(s, r, `touch ./a && echo wrote; ls '${home}'`);
    // Assert: its folders, and nothing else of the home
    expect(out.out.split('\n')).toEqual(['wrote', 'workspaces']);
  });

  it('gives the run its worktree, HOME and /tmp to write, as the agent user, and nothing else', async () => {
    const s = await resolveSandbox({ setting: 'on' });
    const r = await inSandbox(
      s,
      newRun('write'),
      'id -u; touch ./a "$HOME/b" /tmp/c && echo wrote; touch /usr/x /etc/x 2>/dev/null || echo system read-only; ls /proc | grep -c "^[0-9]"',
    );
    const [uid, wrote, system, processes] = r.out.split('\n');
    expect({ uid, wrote, system }).toEqual({ uid: '65534', wrote: 'wrote', system: 'system read-only' });
    // its own PID namespace: bubblewrap's init, setpriv's shell, ls and grep at most
    expect(Number(processes)).toBeLessThan(6);
  });
});

describe('the sandbox as a user switch only (AUTODEV_SANDBOX=uid, the Fargate worker)', () => {
  it('runs as the agent user in the run folders, with no namespace', async () => {
    const s = await resolveSandbox({ setting: 'uid', user: { uid: 10002, gid: 10002 } });
    expect(s).toEqual({ mode: 'uid', user: { uid: 10002, gid: 10002 } });
    const run = newRun('uid');
    const r = await inSandbox(
      s,
      run,
      'id -u; echo "$HOME|$TMPDIR"; touch ./a && echo wrote; cat /proc/1/environ >/dev/null 2>&1 || echo no environ',
    );
    expect(r.out.split('\n')).toEqual(['10002', `${run.home}|${run.tmp}`, 'wrote', 'no environ']);
  });
});
