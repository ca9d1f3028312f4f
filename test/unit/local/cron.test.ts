import { describe, expect, it } from '@jest/globals';
import type { Principal } from '../../../lib/core/access.js';
import type { Schedule } from '../../../lib/core/schedules.js';
import { LocalCron } from '../../../lib/local/cron.js';

const schedule = (extra: Partial<Schedule> = {}): Schedule => ({
  id: 's0000000000000000000a',
  tenant: 'acme',
  name: 'every-minute',
  schedule: 'cron(* * * * ? *)',
  timezone: 'UTC',
  task: { repo: 'https://example.com/a.git', prompt: 'Tidy up.' },
  createdAt: '2026-01-01T00:00:00.000Z',
  enabled: true,
  ...extra,
});

/** A task service that keeps what it was asked, and answers a repeated key like the real one. */
function recordingTasks() {
  const calls: { principal: Principal; body: unknown; key?: string }[] = [];
  const keys = new Set<string>();
  return {
    calls,
    async submit(principal: Principal, body: unknown, key?: string) {
      calls.push({ principal, body, key });
      const created = !keys.has(key ?? '');
      keys.add(key ?? '');
      return { task: { id: `t${calls.length}` } as never, created };
    },
  };
}

describe('LocalCron', () => {
  it('submits each due firing once, as a submitter of the tenant, keyed by schedule and time', async () => {
    // Arrange
    let now = new Date('2026-01-01T10:00:30Z');
    const tasks = recordingTasks();
    const cron = new LocalCron({ schedules: { listAll: async () => [schedule()] }, tasks, now: () => now });
    await cron.start();
    // Act
    const early = await cron.tick();
    now = new Date('2026-01-01T10:01:05Z');
    const first = await cron.tick();
    const again = await cron.tick();
    now = new Date('2026-01-01T10:02:00Z');
    const second = await cron.tick();
    await cron.stop();
    // Assert
    expect(early).toEqual([]);
    expect(first).toHaveLength(1);
    expect(again).toEqual([]);
    expect(second).toHaveLength(1);
    expect(tasks.calls.map((c) => c.key)).toEqual([
      'schedule:s0000000000000000000a:2026-01-01T10:01:00.000Z',
      'schedule:s0000000000000000000a:2026-01-01T10:02:00.000Z',
    ]);
    expect(tasks.calls[0]?.principal).toEqual({
      tenant: 'acme',
      role: 'submitter',
      subject: 'schedule:every-minute',
    });
    expect(tasks.calls[0]?.body).toEqual(schedule().task);
  });

  it('skips firings missed while it was stopped and fires nothing for a removed or disabled schedule', async () => {
    let now = new Date('2026-01-01T10:00:30Z');
    const tasks = recordingTasks();
    const cron = new LocalCron({
      schedules: {
        listAll: async () => [schedule(), schedule({ id: 's0000000000000000000b', enabled: false })],
      },
      tasks,
      now: () => now,
    });
    await cron.start();
    now = new Date('2026-01-01T12:00:30Z'); // two hours late: one firing, not 120
    await cron.tick();
    expect(tasks.calls).toHaveLength(1);
    expect(cron.nextFirings()).toEqual({ s0000000000000000000a: '2026-01-01T12:01:00.000Z' });
    await cron.remove(schedule());
    now = new Date('2026-01-01T13:00:00Z');
    expect(await cron.tick()).toEqual([]);
    await cron.stop();
  });

  it('a restart in the same minute does not fire the same minute again', async () => {
    let now = new Date('2026-01-01T10:01:00Z');
    const tasks = recordingTasks();
    const first = new LocalCron({ schedules: { listAll: async () => [schedule()] }, tasks, now: () => now });
    await first.start();
    now = new Date('2026-01-01T10:02:00Z');
    await first.tick();
    await first.stop();
    // Act: restarted twenty seconds later
    now = new Date('2026-01-01T10:02:20Z');
    const second = new LocalCron({ schedules: { listAll: async () => [schedule()] }, tasks, now: () => now });
    await second.start();
    const made = await second.tick();
    await second.stop();
    // Assert
    expect(made).toEqual([]);
    expect(second.nextFirings()).toEqual({ s0000000000000000000a: '2026-01-01T10:03:00.000Z' });
  });
});
