import { describe, expect, it } from '@jest/globals';
import { ANSWER_GRACE_MS, type CommandRequest, runShortCommand } from '../../../lib/worker/spawner.js';

const sh = (script: string, more: Partial<CommandRequest> = {}): CommandRequest => ({
  file: 'sh',
  args: ['-c', script],
  env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  timeoutMs: 10_000,
  maxOutput: 1024 * 1024,
  ...more,
});

/** Short commands (git, chown) run by a small process of the server's, not forked from the server. */
describe('the spawner', () => {
  it('runs a command with its input, a pipe on fd 3, its own environment, and gives back both outputs', async () => {
    const out = await runShortCommand(
      sh('cat; cat <&3; echo "$ONLY_THIS:$HOME" >&2; exit 3', {
        input: 'from stdin\n',
        fd3: 'from fd 3\n',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ONLY_THIS: 'set' },
      }),
    );
    expect(out).toEqual({ code: 3, stdout: 'from stdin\nfrom fd 3\n', stderr: 'set:\n' });
  });

  it('starts commands from a process other than the server', async () => {
    const parent = Number((await runShortCommand(sh('echo $PPID'))).stdout.trim());
    expect(parent).toBeGreaterThan(0);
    expect(parent).not.toBe(process.pid);
  });

  it('starts a command with an input too large for a frame from the server itself, whole', async () => {
    const out = await runShortCommand(sh('wc -c; echo $PPID', { input: 'x'.repeat(100 * 1024) }));
    const [bytes, parent] = out.stdout.trim().split('\n').map(Number);
    expect(bytes).toBe(100 * 1024);
    expect(parent).toBe(process.pid);
  });

  it('kills a command past its time, or one that prints too much', async () => {
    const slow = await runShortCommand(sh('sleep 5', { timeoutMs: 200 }));
    expect(slow.failure).toBe('timed out after 200 ms');
    expect(slow.code).toBeNull();
    const loud = await runShortCommand(sh('yes', { maxOutput: 64 * 1024 }));
    expect(loud.failure).toBe('printed too much');
  });

  it('fails what a dead spawner was running, and starts a new one for the next command', async () => {
    // Arrange: a command in flight, and the spawner that runs it
    const spawnerPid = Number((await runShortCommand(sh('echo $PPID'))).stdout.trim());
    const inFlight = runShortCommand(sh('sleep 3; echo done'));
    await new Promise((r) => setTimeout(r, 200));
    // Act
    process.kill(spawnerPid, 'SIGKILL');
    // Assert
    expect((await inFlight).failure).toBe('the spawner process ended');
    const next = await runShortCommand(sh('echo $PPID'));
    expect(next.code).toBe(0);
    expect(Number(next.stdout.trim())).not.toBe(spawnerPid);
  });

  it('fails a command a stuck spawner does not answer, and starts a new spawner for the next', async () => {
    // Arrange: a spawner that stops answering
    const spawnerPid = Number((await runShortCommand(sh('echo $PPID'))).stdout.trim());
    process.kill(spawnerPid, 'SIGSTOP');
    // Act
    const started = Date.now();
    const unanswered = await runShortCommand(sh('echo never', { timeoutMs: 100 }));
    // Assert
    expect(unanswered.failure).toBe('the spawner process ended');
    expect(Date.now() - started).toBeGreaterThanOrEqual(100 + ANSWER_GRACE_MS - 50);
    const next = await runShortCommand(sh('echo $PPID'));
    expect(next.code).toBe(0);
    expect(Number(next.stdout.trim())).not.toBe(spawnerPid);
  }, 20_000);
});
