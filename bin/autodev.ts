#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../lib/core/errors.js';
import { AccessRole, isTerminal, type Task } from '../lib/core/schemas.js';
import { loadOrCreateSigningKey, signLocalToken } from '../lib/local/auth.js';
import { ApiClient, ApiClientError } from '../lib/local/client.js';
import { loadLocalConfig } from '../lib/local/config.js';

const env = process.env;
const home = () => resolve(env.AUTODEV_HOME ?? '.autodev');
const baseUrl = () =>
  env.AUTODEV_URL ?? `http://${env.AUTODEV_HOST ?? '127.0.0.1'}:${env.AUTODEV_PORT ?? '8001'}`;

/** The token for API calls: --token, AUTODEV_TOKEN, or one minted from the local platform's key. */
async function client(opts: { token?: string }): Promise<ApiClient> {
  let token = opts.token ?? env.AUTODEV_TOKEN;
  if (!token) {
    const keyFile = join(home(), 'signing-key');
    if (!existsSync(keyFile)) {
      throw new ApiClientError(
        0,
        'no_token',
        `No token: set AUTODEV_TOKEN (see \`autodev token\`), or run where ${keyFile} exists.`,
      );
    }
    const { key } = loadOrCreateSigningKey(keyFile);
    token = await signLocalToken(key, {
      tenant: env.AUTODEV_TENANT ?? 'default',
      role: 'operator',
      subject: 'cli',
      ttl: '10m',
    });
  }
  return new ApiClient(baseUrl(), token);
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

function describe(t: Task): string {
  const lines = [
    `${t.id}  ${t.status}  role=${t.role}${t.provider ? ` provider=${t.provider}` : ''}  priority=${t.priority}`,
  ];
  lines.push(`  repo:    ${t.repo}${t.baseBranch ? ` (${t.baseBranch})` : ''}`);
  lines.push(`  prompt:  ${t.prompt.length > 100 ? `${t.prompt.slice(0, 99)}…` : t.prompt}`);
  if (t.branch) lines.push(`  branch:  ${t.branch}`);
  if (t.commit) lines.push(`  commit:  ${t.commit}`);
  if (t.pullRequest) lines.push(`  pull request: ${t.pullRequest.url}`);
  if (t.summary) lines.push(`  summary: ${t.summary}`);
  lines.push(
    `  usage:   ${t.usage.inputTokens} in / ${t.usage.outputTokens} out tokens, $${t.usage.costUsd.toFixed(4)}`,
  );
  for (const a of t.attempts) {
    lines.push(
      `  attempt ${a.number}: ${a.provider} ${a.outcome}${a.errorClass ? ` (${a.errorClass})` : ''}${a.message ? ` - ${a.message}` : ''}`,
    );
  }
  if (t.durationMs !== undefined) lines.push(`  duration: ${(t.durationMs / 1000).toFixed(1)} s`);
  if (t.error) lines.push(`  error:   ${t.error.code}: ${t.error.message}`);
  return lines.join('\n');
}

async function waitFor(api: ApiClient, id: string): Promise<Task> {
  let last = '';
  let done = false;
  const watch = (async () => {
    while (!done) {
      const t = await api.get(id);
      if (t.status !== last) {
        last = t.status;
        process.stderr.write(`[autodev] ${id} is ${t.status}\n`);
      }
      if (isTerminal(t.status)) return t;
      await new Promise((r) => setTimeout(r, 500));
    }
    return api.get(id);
  })();
  const stream = api.followLogs(id, (chunk) => process.stdout.write(chunk));
  const task = await watch;
  done = true;
  // give the log stream a moment to print its last lines, without holding the process open
  await Promise.race([stream, new Promise((r) => setTimeout(r, 2000).unref())]);
  return task;
}

const program = new Command()
  .name('autodev')
  .description(
    'Run AI coding agents on development tasks: queue, run headless, push a branch, record everything.',
  )
  .showHelpAfterError();

program
  .command('serve')
  .description('start the local platform (HTTP API, executor, SQLite store in $AUTODEV_HOME)')
  .action(async () => {
    const config = loadLocalConfig();
    const { startLocalPlatform } = await import('../lib/local/platform.js');
    const platform = await startLocalPlatform(config);
    const out = (s: string) => process.stdout.write(`${s}\n`);
    out(`AutoDev local platform listening on ${platform.url}`);
    out(`  data:        ${config.home}${platform.keyCreated ? ' (created, with a new signing key)' : ''}`);
    out(`  concurrency: ${config.concurrency} task(s) at once`);
    out(`  get a token: npx autodev token --tenant acme --role submitter`);
    out(
      `  submit:      AUTODEV_TOKEN=<token> npx autodev submit --repo <git url or path> --prompt "..." --wait`,
    );
    let signals = 0;
    const shutdown = (sig: string) => {
      signals++;
      if (signals > 1) {
        out('Stopping now; running tasks will be re-queued on the next start.');
        process.exit(130);
      }
      out(`${sig}: draining running tasks for up to ${config.drainMs / 1000} s (again to stop at once)…`);
      void platform.close().then(() => {
        out('Stopped.');
        process.exit(0);
      });
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });

program
  .command('token')
  .description("print a JWT the local platform accepts (signed with $AUTODEV_HOME's key)")
  .requiredOption('--tenant <tenant>', 'tenant the token acts for')
  .addOption(new Option('--role <role>', 'access role').choices(AccessRole.options).makeOptionMandatory())
  .option('--subject <subject>', 'who the token is for', 'cli-user')
  .option('--ttl <ttl>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
  .action(async (o: { tenant: string; role: AccessRole; subject: string; ttl: string }) => {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(o.tenant))
      throw new InvalidArgumentError('tenant: lowercase letters, digits, "-" and "_"');
    if (!/^\d+\s*(s|m|h|d|w)$/.test(o.ttl))
      throw new InvalidArgumentError('ttl: a number and a unit (s, m, h, d, w), e.g. 1h');
    const { key } = loadOrCreateSigningKey(join(home(), 'signing-key'));
    process.stdout.write(`${await signLocalToken(key, o)}\n`);
  });

const withToken = (c: Command) =>
  c.option('--token <jwt>', 'token (default: $AUTODEV_TOKEN)').option('--json', 'print JSON');

withToken(
  program
    .command('submit')
    .description('queue a task')
    .requiredOption('--repo <repo>', 'git URL (https, ssh) or, locally, a path')
    .requiredOption('--prompt <text>', 'what the agent should do')
    .option('--role <role>', 'agent role (backend, frontend, data, ml, devops, security, docs)')
    .option('--provider <provider>', 'preferred provider (e.g. claude)')
    .option('--base-branch <branch>', 'branch to start from (default: the repo default branch)')
    .addOption(new Option('--priority <priority>', 'priority').choices(['high', 'normal', 'low']))
    .option('--timeout <seconds>', 'wall-clock limit for the agent', positiveInt)
    .option('--cpu <cpus>', 'CPU limit', Number)
    .option('--memory <mib>', 'memory limit in MiB', positiveInt)
    .option('--max-cost <usd>', 'cost limit in USD', Number)
    .option('--label <label...>', 'labels')
    .option('--depends-on <id...>', 'task ids that must succeed first')
    .option('--idempotency-key <key>', 'submit at most once for this key')
    .option('--wait', 'show progress and wait for the end; exit non-zero unless it succeeded'),
).action(async (o) => {
  const repo =
    /^[./~]/.test(o.repo) || (!o.repo.includes(':') && existsSync(o.repo)) ? resolve(o.repo) : o.repo;
  const limits = Object.fromEntries(
    Object.entries({
      timeoutSeconds: o.timeout,
      cpu: o.cpu,
      memoryMiB: o.memory,
      maxCostUsd: o.maxCost,
    }).filter(([, v]) => v !== undefined),
  );
  const api = await client(o);
  const body = {
    repo: isAbsolute(repo) || repo.includes(':') ? repo : resolve(repo),
    prompt: o.prompt,
    ...(o.role && { role: o.role }),
    ...(o.provider && { provider: o.provider }),
    ...(o.baseBranch && { baseBranch: o.baseBranch }),
    ...(o.priority && { priority: o.priority }),
    ...(o.label && { labels: o.label }),
    ...(o.dependsOn && { dependsOn: o.dependsOn }),
    ...(Object.keys(limits).length && { limits }),
  };
  const task = await api.submit(body, o.idempotencyKey);
  if (!o.wait) {
    process.stdout.write(o.json ? `${JSON.stringify(task, null, 2)}\n` : `${task.id}\n`);
    return;
  }
  process.stderr.write(`[autodev] submitted ${task.id}\n`);
  const final = await waitFor(api, task.id);
  process.stdout.write(o.json ? `${JSON.stringify(final, null, 2)}\n` : `${describe(final)}\n`);
  if (final.status !== 'succeeded') process.exitCode = 1;
});

withToken(program.command('status').description('show a task').argument('<id>')).action(async (id, o) => {
  const t = await (await client(o)).get(id);
  process.stdout.write(o.json ? `${JSON.stringify(t, null, 2)}\n` : `${describe(t)}\n`);
});

withToken(
  program
    .command('list')
    .description("list your tenant's tasks, newest first")
    .option('--status <status>', 'only this status')
    .option('--role <role>', 'only this role')
    .option('--limit <n>', 'how many', positiveInt, 20),
).action(async (o) => {
  const page = await (await client(o)).list({ status: o.status, role: o.role, limit: o.limit });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return;
  }
  for (const t of page.items) {
    process.stdout.write(
      `${t.id}  ${t.status.padEnd(9)}  ${t.role.padEnd(8)}  ${t.createdAt}  ${t.prompt.split('\n')[0]?.slice(0, 60)}\n`,
    );
  }
  if (page.nextCursor) process.stdout.write(`(more: --limit or cursor ${page.nextCursor})\n`);
});

withToken(
  program
    .command('logs')
    .description("print a task's log")
    .argument('<id>')
    .option('-f, --follow', 'keep printing until the task ends'),
).action(async (id, o) => {
  const api = await client(o);
  if (o.follow) await api.followLogs(id, (chunk) => process.stdout.write(chunk));
  else process.stdout.write(await api.logs(id));
});

withToken(
  program.command('cancel').description('cancel a task (stops its agent if running)').argument('<id>'),
).action(async (id, o) => {
  const t = await (await client(o)).cancel(id);
  process.stdout.write(
    o.json
      ? `${JSON.stringify(t, null, 2)}\n`
      : `${t.id} ${t.status === 'running' ? 'cancelling' : t.status}\n`,
  );
});

withToken(
  program.command('retry').description('run a failed or cancelled task again (operator)').argument('<id>'),
).action(async (id, o) => {
  const t = await (await client(o)).retry(id);
  process.stdout.write(o.json ? `${JSON.stringify(t, null, 2)}\n` : `${t.id} ${t.status}\n`);
});

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ApiClientError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.details) process.stderr.write(`${JSON.stringify(err.details, null, 2)}\n`);
  } else if (err instanceof ConfigError || err instanceof InvalidArgumentError) {
    process.stderr.write(`error: ${err.message}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
});
