import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openApiDocument } from '../../lib/api/openapi.js';
import type { Task } from '../../lib/core/schemas.js';
import {
  CLI,
  cli,
  makeRemote,
  platformEnv,
  type RunningServer,
  startServer,
  tempDir,
} from '../support/local-platform.js';

/** The escape that starts a terminal control sequence. */
const ESC = String.fromCharCode(27);

type Operation = { operationId: string; requestBody?: unknown };
type Doc = { paths: Record<string, Record<string, Operation>> };

/** The commands `autodev --help` lists (and those of each group, as `schedule create`). */
async function commandsOf(env: NodeJS.ProcessEnv, prefix: string[] = []): Promise<string[]> {
  const { stdout } = await cli([...prefix, '--help'], env);
  const section = stdout.split(/^Commands:$/m)[1] ?? '';
  const names = [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1] as string).filter((n) => n !== 'help');
  const all: string[] = [];
  for (const name of names) {
    const path = [...prefix, name];
    const sub = await commandsOf(env, path);
    all.push(...(sub.length ? sub : [path.join(' ')]));
  }
  return all;
}

/** Runs the CLI with stdout a pseudo-terminal (util-linux `script`), as a person at a terminal would. */
function cliOnTty(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve) => {
    const proc = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (c) => {
      out += c;
    });
    proc.on('close', () => resolve(out));
  });
}

describe('the API description and the CLI, against the local platform', () => {
  let dir: string;
  let remote: string;
  let server: RunningServer;
  let env: NodeJS.ProcessEnv;
  let adminToken: string;
  let listed: Promise<string[]> | undefined;
  /** The CLI's commands, read from its help once. */
  const commands = () => {
    listed ??= commandsOf(env);
    return listed;
  };

  const submit = async (prompt: string, extra: string[] = []) => {
    const r = await cli(
      ['submit', '--repo', remote, '--prompt', prompt, '--provider', 'claude', '--json', ...extra],
      env,
    );
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Task;
  };

  beforeAll(async () => {
    dir = tempDir();
    remote = makeRemote(dir);
    server = await startServer(platformEnv(join(dir, 'home'), { AUTODEV_CONCURRENCY: '4' }));
    adminToken = (await cli(['token', '--tenant', 'acme', '--role', 'admin'], server.env)).stdout.trim();
    env = { ...server.env, AUTODEV_TOKEN: adminToken };
  });

  afterAll(async () => {
    await server?.stop();
  });

  describe('GET /openapi.json and GET /docs', () => {
    it('serve the description without a token', async () => {
      // Act
      const spec = await fetch(`${server.url}/openapi.json`);
      const docs = await fetch(`${server.url}/docs`);
      // Assert
      expect(spec.status).toBe(200);
      expect(await spec.json()).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
      expect(docs.status).toBe(200);
      expect(docs.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(docs.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'sha256-/);
      expect(await docs.text()).toContain('<code>/v1/tasks/{taskId}/logs</code>');
    });

    it('answers every operation it describes (no 404, no 405)', async () => {
      // Arrange: a task and a schedule to name in paths
      const task = await submit('Described [fake:edit=A.md]');
      const schedule = JSON.parse(
        (
          await cli(
            [
              'schedule',
              'create',
              '--name',
              'probe',
              '--cron',
              'rate(1 day)',
              '--repo',
              remote,
              '--prompt',
              'x',
              '--json',
            ],
            env,
          )
        ).stdout,
      ) as { id: string };
      const samples: Record<string, string> = {
        taskId: task.id,
        scheduleId: schedule.id,
        tenant: 'acme',
        role: 'backend',
      };
      const bodies: Record<string, unknown> = {
        submitTask: { repo: remote, prompt: 'Probe', provider: 'claude' },
        createSchedule: { name: 'probe-two', schedule: 'rate(1 day)', task: { repo: remote, prompt: 'x' } },
        setRoleFullAccess: { enabled: false },
      };
      const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as Doc;
      const deletes = (o: { method: string; path: string }) =>
        o.method !== 'DELETE' ? 0 : o.path.startsWith('/v1/tenants/') ? 2 : 1;
      const operations = Object.entries(doc.paths)
        .flatMap(([path, ops]) =>
          Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
        )
        // what deletes goes last, and the tenant's erasure last of all
        .sort((a, b) => deletes(a) - deletes(b));
      // Act
      const answers: string[] = [];
      for (const { method, path, op } of operations) {
        const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
          const value = samples[name];
          if (!value)
            throw new Error(`no sample value for {${name}} in ${method} ${path}: add one to this test`);
          return encodeURIComponent(value);
        });
        const body = op.requestBody ? JSON.stringify(bodies[op.operationId] ?? {}) : undefined;
        const res = await fetch(`${server.url}${url}`, {
          method,
          headers: {
            authorization: `Bearer ${adminToken}`,
            ...(body && { 'content-type': 'application/json' }),
          },
          body,
        });
        answers.push(`${method} ${path} -> ${res.status}`);
        if (process.env.AUTODEV_TEST_VERBOSE) process.stderr.write(`${answers.at(-1)}\n`);
        await res.body?.cancel();
      }
      // Assert
      expect(answers).toHaveLength(operations.length);
      expect(answers.filter((a) => / -> (404|405)$/.test(a))).toEqual([]);
    });
  });

  describe('the CLI', () => {
    it('prints one JSON document for --json on every command', async () => {
      // Arrange: a task that runs for a while, to cancel and retry
      const done = await submit('Quick [fake:edit=B.md]', ['--wait']);
      const slow = await submit('Slow [fake:sleep=600000]');
      const runs: Record<string, () => Promise<{ code: number | null; stdout: string }>> = {
        serve: () => serveJson(),
        token: () => cli(['token', '--tenant', 'acme', '--role', 'viewer', '--json'], env),
        submit: () => cli(['submit', '--repo', remote, '--prompt', 'Again', '--json'], env),
        status: () => cli(['status', done.id, '--json'], env),
        list: () => cli(['list', '--json'], env),
        logs: () => cli(['logs', done.id, '--json'], env),
        cancel: () => cli(['cancel', slow.id, '--json'], env),
        retry: async () => {
          await new Promise((r) => setTimeout(r, 1500));
          return cli(['retry', slow.id, '--json'], env);
        },
        providers: () => cli(['providers', '--json'], env),
        // a task that is no epic: the 409 as one JSON document
        approve: () => cli(['approve', done.id, '--json'], env),
        doctor: () => cli(['doctor', '--json'], env),
        'schedule create': () =>
          cli(
            [
              'schedule',
              'create',
              '--name',
              'nightly',
              '--cron',
              'rate(1 day)',
              '--repo',
              remote,
              '--prompt',
              'x',
              '--json',
            ],
            env,
          ),
        'schedule list': () => cli(['schedule', 'list', '--json'], env),
        'schedule delete': async () => {
          const { items } = JSON.parse((await cli(['schedule', 'list', '--json'], env)).stdout) as {
            items: { id: string }[];
          };
          return cli(['schedule', 'delete', items[0]?.id ?? 'none', '--json'], env);
        },
        audit: () => cli(['audit', '--json'], env),
        completion: () => cli(['completion', 'bash', '--json'], env),
        // refused while the slow task is unfinished: acme's data stays for the commands after it
        'tenants erase': () => cli(['tenants', 'erase', 'acme', '--json'], env),
      };
      const serveJson = () =>
        new Promise<{ code: number | null; stdout: string }>((resolve) => {
          const proc = spawn(process.execPath, [CLI, 'serve', '--json'], {
            env: platformEnv(join(dir, 'home-two')),
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          let stdout = '';
          proc.stdout.on('data', (c) => {
            stdout += c;
            if (stdout.includes('\n')) proc.kill('SIGKILL');
          });
          proc.on('close', () => resolve({ code: 0, stdout }));
        });
      // Act
      const outputs: Record<string, unknown> = {};
      for (const command of await commands()) {
        const run = runs[command];
        if (!run) throw new Error(`no --json case for \`autodev ${command}\`: add one to this test`);
        const { code, stdout } = await run();
        outputs[command] = [code, JSON.parse(stdout)];
      }
      // Assert
      expect(Object.keys(outputs).sort()).toEqual(Object.keys(runs).sort());
      expect(outputs.status).toEqual([0, expect.objectContaining({ id: done.id, status: 'succeeded' })]);
      expect(outputs['tenants erase']).toEqual([
        1,
        { error: expect.objectContaining({ code: 'tasks_not_finished' }) },
      ]);
      expect(outputs.cancel).toEqual([0, expect.objectContaining({ id: slow.id })]);
      expect(outputs.retry).toEqual([0, expect.objectContaining({ id: slow.id })]);
      expect(outputs.approve).toEqual([1, { error: expect.objectContaining({ code: 'conflict' }) }]);
      expect(outputs.logs).toEqual([
        0,
        expect.objectContaining({ status: 'succeeded', lines: expect.any(Array) }),
      ]);
      expect(outputs.serve).toEqual([
        0,
        expect.objectContaining({ url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) }),
      ]);
      expect(outputs['schedule delete']).toEqual([0, { deleted: expect.any(String) }]);
      await cli(['cancel', slow.id], env);
    }, 120_000);

    it('prints a JSON error, and nothing else on stdout, when --json fails', async () => {
      // Act
      const r = await cli(['status', 'tnothing', '--json'], env);
      // Assert
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toEqual({
        error: { code: 'not_found', message: expect.stringContaining('404') },
      });
    });

    it('completes every command in bash, zsh and fish', async () => {
      // Arrange
      const words = [...new Set((await commands()).flatMap((c) => c.split(' ')))];
      for (const shell of ['bash', 'zsh', 'fish']) {
        // Act
        const { code, stdout } = await cli(['completion', shell], env);
        // Assert
        expect(code).toBe(0);
        const missing = words.filter((w) => !new RegExp(`'${w}'|\\b${w}\\b`).test(stdout));
        expect([shell, missing]).toEqual([shell, []]);
      }
      // and bash offers them: `autodev schedule <TAB>`, `autodev submit --priority <TAB>`
      const script = (await cli(['completion', 'bash'], env)).stdout;
      const complete = (line: string[]) =>
        execFileSync(
          'bash',
          [
            '-c',
            `${script}\nCOMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; _autodev_completion; echo "\${COMPREPLY[*]}"`,
          ],
          { encoding: 'utf8' },
        ).trim();
      const top = [...new Set((await commands()).map((c) => c.split(' ')[0] as string))];
      expect(complete(['autodev', '']).split(' ').sort()).toEqual([...top, '--help', '-h'].sort());
      expect(complete(['autodev', 'schedule', ''])).toBe('create list delete --help -h');
      expect(complete(['autodev', 'submit', '--priority', ''])).toBe('high normal low');
      expect(complete(['autodev', 'logs', '--f'])).toBe('--follow');
    });

    it('prints status changes as plain lines while `submit --wait` waits, off a terminal', async () => {
      // Act
      const r = await cli(
        ['submit', '--repo', remote, '--prompt', 'Wait [fake:sleep=1500]', '--provider', 'claude', '--wait'],
        env,
      );
      // Assert
      expect(r.code).toBe(0);
      const statuses = [...r.stderr.matchAll(/^\[autodev\] (t\w+) is (\w+) \((.*)\)$/gm)].map(
        (m) => `${m[2]} (${m[3]})`,
      );
      expect(statuses[0]).toMatch(/^(queued|running)/);
      expect(statuses).toContainEqual(expect.stringMatching(/^running \(attempt 1 on claude, \d+s\)$/));
      expect(statuses.at(-1)).toMatch(/^succeeded \(attempt 1 on claude, \d+s\)$/);
      // one line per change, never rewritten in place
      expect(new Set(statuses.map((s) => s.split(' ')[0])).size).toBe(statuses.length);
      expect(r.stderr).not.toContain('\r');
      expect(r.stderr).not.toContain(ESC);
      // and the agent's log streamed on stdout before the summary
      expect(r.stdout).toMatch(/agent process \d+ started[\s\S]*succeeded {2}role=/);
    });

    it('rewrites one status line in place on a terminal, for `logs -f`', async () => {
      // Arrange
      const task = await submit('Follow me [fake:sleep=2500]');
      // Act
      const out = await cliOnTty(['logs', '-f', task.id], env);
      // Assert
      expect(out).toMatch(
        new RegExp(`\r${ESC}\\[2K\\[autodev\\] t\\w+ is running \\(attempt 1 on claude, \\d+s\\)`),
      );
      expect(out).toMatch(/\[autodev\] t\w+ is succeeded \(attempt 1 on claude, \d+s\)\r?\n/);
      expect(out).toContain('task succeeded');
    }, 60_000);
  });
});
