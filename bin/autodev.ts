#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import type { ProviderInfo } from '../lib/api/schemas.js';
import { DEFAULT_MAX_TOKEN_TTL_SECONDS, parseDuration } from '../lib/core/access.js';
import { ConfigError } from '../lib/core/errors.js';
import { AccessRole, type Task } from '../lib/core/schemas.js';
import { loadOrCreateSigningKey, signLocalToken } from '../lib/local/auth.js';
import { parseBatchFile, waitForAll } from '../lib/local/batch-file.js';
import { ApiClient, ApiClientError } from '../lib/local/client.js';
import { completionScript, SHELLS, type Shell } from '../lib/local/completion.js';
import { loadLocalConfig } from '../lib/local/config.js';
import { describeProviders, formatProviderStats, formatProviders } from '../lib/local/providers.js';
import { watchTask } from '../lib/local/task-watch.js';
import { limitsSupported, resolveBinary } from '../lib/worker/agent-process.js';
import { describeSandbox, resolveSandbox } from '../lib/worker/sandbox.js';

const env = process.env;
const home = () => resolve(env.AUTODEV_HOME ?? '.autodev');
const baseUrl = () =>
  env.AUTODEV_URL ?? `http://${env.AUTODEV_HOST ?? '127.0.0.1'}:${env.AUTODEV_PORT ?? '8001'}`;

/** The token for API calls: --token, AUTODEV_TOKEN, or one minted from the local platform's key. */
async function client(
  opts: { token?: string },
  role: AccessRole = 'operator',
  tenant = env.AUTODEV_TENANT ?? 'default',
): Promise<ApiClient> {
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
      tenant,
      role,
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
  if (t.traceId) lines.push(`  trace:   ${t.traceId}`);
  lines.push(
    `  usage:   ${t.usage.inputTokens} in / ${t.usage.outputTokens} out tokens, $${t.usage.costUsd.toFixed(4)}`,
  );
  for (const a of t.attempts) {
    lines.push(
      `  attempt ${a.number}: ${a.provider} ${a.outcome}${a.errorClass ? ` (${a.errorClass})` : ''}${a.message ? ` - ${a.message}` : ''}`,
    );
    if (a.routing) lines.push(`    routed: ${a.routing.reason}`);
    // the model gateway's ledger of the attempt
    const calls = a.calls ?? [];
    for (const c of calls.slice(0, 20))
      lines.push(
        `    ${c.at}  ${c.model}  ${c.status || 'no answer'}  ${c.inputTokens} in (${c.cachedInputTokens} cached) / ${c.outputTokens} out  $${c.costUsd.toFixed(4)}  ${c.durationMs} ms`,
      );
    if (calls.length > 20) lines.push(`    … ${calls.length - 20} more model calls (--json shows every one)`);
  }
  if (t.durationMs !== undefined) lines.push(`  duration: ${(t.durationMs / 1000).toFixed(1)} s`);
  if (t.error) lines.push(`  error:   ${t.error.code}: ${t.error.message}`);
  return lines.join('\n');
}

/** `--json`: the one JSON document on stdout; otherwise the text for people. */
function print(o: { json?: boolean }, data: unknown, text: () => string): void {
  process.stdout.write(o.json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

/** Follows a task: a status line on stderr, its log on stdout (on stderr with --json: stdout is the JSON's). */
function watch(api: ApiClient, id: string, o: { json?: boolean }): Promise<Task> {
  const out = o.json ? process.stderr : process.stdout;
  return watchTask(api, id, { out, err: process.stderr, tty: Boolean(process.stderr.isTTY) });
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
  .option('--json', 'print where it listens as one JSON document (messages after it go to stderr)')
  .action(async (o: { json?: boolean }) => {
    const config = loadLocalConfig();
    const { startLocalPlatform } = await import('../lib/local/platform.js');
    const platform = await startLocalPlatform(config);
    const out = (s: string) => (o.json ? process.stderr : process.stdout).write(`${s}\n`);
    if (o.json) {
      const { url } = platform;
      const sandbox = describeSandbox(platform.sandbox);
      print(o, { url, home: config.home, concurrency: config.concurrency, sandbox }, () => '');
    }
    out(`AutoDev local platform listening on ${platform.url}`);
    out(`  data:        ${config.home}${platform.keyCreated ? ' (created, with a new signing key)' : ''}`);
    out(`  concurrency: ${config.concurrency} task(s) at once`);
    out(`  sandbox:     ${describeSandbox(platform.sandbox)}`);
    out(`  get a token: npx autodev token --tenant acme --role submitter`);
    out(`  dashboard:   ${platform.url}/ (paste a token to sign in)`);
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
  .option('--json', 'print JSON')
  .action(async (o: { tenant: string; role: AccessRole; subject: string; ttl: string; json?: boolean }) => {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(o.tenant))
      throw new InvalidArgumentError('tenant: lowercase letters, digits, "-" and "_"');
    const ttl = parseDuration(o.ttl);
    if (!ttl || !/[smhdw]$/.test(o.ttl.trim()))
      throw new InvalidArgumentError('ttl: a number and a unit (s, m, h, d, w), e.g. 1h');
    const max = parseDuration(env.AUTODEV_MAX_TOKEN_TTL ?? '') ?? DEFAULT_MAX_TOKEN_TTL_SECONDS;
    if (ttl > max)
      throw new InvalidArgumentError(
        `ttl: at most ${max} s, what the server accepts (AUTODEV_MAX_TOKEN_TTL)`,
      );
    const { key } = loadOrCreateSigningKey(join(home(), 'signing-key'));
    const token = await signLocalToken(key, o);
    print(o, { token, tenant: o.tenant, role: o.role, subject: o.subject, ttlSeconds: ttl }, () => token);
  });

const withToken = (c: Command) =>
  c.option('--token <jwt>', 'token (default: $AUTODEV_TOKEN)').option('--json', 'print JSON');

withToken(
  program
    .command('submit')
    .description('queue a task, or a batch of them from a file (--file)')
    .option('--repo <repo>', 'git URL (https, ssh) or, locally, a path')
    .option('--prompt <text>', 'what the agent should do')
    .option('--file <tasks.yaml>', 'submit the tasks of this YAML or JSON file as one batch, all or none')
    .option('--role <role>', 'agent role (backend, frontend, data, ml, devops, security, docs)')
    .option(
      '--provider <provider>',
      'preferred provider (e.g. claude), or "auto": routed from recorded outcomes',
    )
    .option('--pin', 'keep to --provider: no failover to another provider')
    .option('--base-branch <branch>', 'branch to start from (default: the repo default branch)')
    .addOption(new Option('--priority <priority>', 'priority').choices(['high', 'normal', 'low']))
    .option('--timeout <seconds>', 'wall-clock limit for the agent', positiveInt)
    .option('--cpu <cpus>', 'CPU limit', Number)
    .option('--memory <mib>', 'memory limit in MiB', positiveInt)
    .option('--max-cost <usd>', 'cost limit in USD', Number)
    .option('--label <label...>', 'labels')
    .option('--depends-on <id...>', 'task ids that must succeed first')
    .option('--files <path...>', 'files or folders the task will change: it waits for earlier tasks on them')
    .option('--idempotency-key <key>', 'submit at most once for this key')
    .option('--wait', 'show progress and wait for the end; exit non-zero unless it succeeded'),
).action(async (o) => {
  if (o.file) return submitFile(o);
  if (!o.repo || !o.prompt) throw new InvalidArgumentError('submit needs --repo and --prompt, or --file');
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
    ...(o.pin && { pin: true }),
    ...(o.baseBranch && { baseBranch: o.baseBranch }),
    ...(o.priority && { priority: o.priority }),
    ...(o.label && { labels: o.label }),
    ...(o.dependsOn && { dependsOn: o.dependsOn }),
    ...(o.files && { files: o.files }),
    ...(Object.keys(limits).length && { limits }),
  };
  const task = await api.submit(body, o.idempotencyKey);
  if (!o.wait) {
    print(o, task, () => task.id);
    return;
  }
  process.stderr.write(`[autodev] submitted ${task.id}\n`);
  const final = await watch(api, task.id, o);
  print(o, final, () => describe(final));
  if (final.status !== 'succeeded') process.exitCode = 1;
});

/** `submit --file`: the file's tasks as one batch; with --wait, until every one has ended. */
async function submitFile(o: {
  file: string;
  idempotencyKey?: string;
  wait?: boolean;
  json?: boolean;
  token?: string;
}) {
  const body = parseBatchFile(readFileSync(o.file, 'utf8'), o.file);
  const api = await client(o);
  const tasks = await api.submitBatch(body, o.idempotencyKey);
  const line = (t: Task) => `${t.key ?? ''}\t${t.id}\t${t.status}`;
  if (!o.wait) {
    print(o, tasks, () => tasks.map(line).join('\n'));
    return;
  }
  process.stderr.write(`[autodev] submitted ${tasks.length} tasks; waiting for them to end\n`);
  const ended = await waitForAll(
    (id) => api.get(id),
    tasks.map((t) => t.id),
  );
  print(o, ended, () => ended.map(line).join('\n'));
  if (ended.some((t) => t.status !== 'succeeded')) process.exitCode = 1;
}

withToken(program.command('status').description('show a task').argument('<id>')).action(async (id, o) => {
  const t = await (await client(o)).get(id);
  print(o, t, () => describe(t));
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
    .option('-f, --follow', 'keep printing until the task ends, with a status line'),
).action(async (id, o) => {
  const api = await client(o);
  if (o.follow) {
    const task = await watch(api, id, o);
    if (o.json) print(o, { id, status: task.status }, () => '');
    return;
  }
  const page = await api.logPage(id);
  if (o.json)
    print(
      o,
      { id, status: page.status, lastSeq: page.lastSeq, lines: page.text.split('\n').filter(Boolean) },
      () => '',
    );
  else process.stdout.write(page.text);
});

withToken(
  program.command('cancel').description('cancel a task (stops its agent if running)').argument('<id>'),
).action(async (id, o) => {
  const t = await (await client(o)).cancel(id);
  print(o, t, () => `${t.id} ${t.status === 'running' ? 'cancelling' : t.status}`);
});

withToken(
  program
    .command('approve')
    .description("approve an epic's plan: its sub-tasks are stored and start (operator, or its submitter)")
    .argument('<id>'),
).action(async (id, o) => {
  const t = await (await client(o)).approve(id);
  print(o, t, () => (t.subtasks ?? []).map((s) => `${s.key ?? ''}\t${s.id}\t${s.status}`).join('\n'));
});

withToken(
  program.command('retry').description('run a failed or cancelled task again (operator)').argument('<id>'),
).action(async (id, o) => {
  const t = await (await client(o)).retry(id);
  print(o, t, () => `${t.id} ${t.status}`);
});

withToken(
  program
    .command('providers')
    .description('list providers: version, credentials, circuit breaker, success rate')
    .option('--stats', 'per agent role: attempts, success rate, median time and cost (what routing reads)')
    .option('--days <n>', 'with --stats: days of attempts', positiveInt, 7)
    .option('--role <role>', 'with --stats: only this role'),
).action(async (o) => {
  const api = await client(o);
  if (o.stats) {
    const page = await api.providerStats({ days: o.days, role: o.role });
    print(o, page, () => formatProviderStats(page));
    return;
  }
  const { items } = await api.providers();
  print(o, items, () => formatProviders(items));
});

program
  .command('doctor')
  .description('check this machine and configuration, and explain what is missing')
  .option('--json', 'print the checks as JSON')
  .action(async (o: { json?: boolean }) => {
    let problems = 0;
    const checks: { result: 'ok' | 'warn' | 'fail'; check: string; hint?: string }[] = [];
    const say = (s: string) => (o.json ? undefined : process.stdout.write(s));
    const ok = (check: string) => {
      checks.push({ result: 'ok', check });
      say(`  ok    ${check}\n`);
    };
    const bad = (check: string, hint: string) => {
      problems++;
      checks.push({ result: 'fail', check, hint });
      say(`  FAIL  ${check}\n        ${hint}\n`);
    };
    const warn = (check: string, hint: string) => {
      checks.push({ result: 'warn', check, hint });
      say(`  warn  ${check}\n        ${hint}\n`);
    };
    const report = () => print(o, { ok: problems === 0, problems, checks }, () => '');
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    if (major > 20 || (major === 20 && minor >= 19)) ok(`Node.js ${process.versions.node}`);
    else bad(`Node.js ${process.versions.node}`, 'AutoDev needs Node.js 20.19 or later.');
    const gitPath = resolveBinary('git');
    if (gitPath) ok(`git at ${gitPath}`);
    else bad('git is not on PATH', 'Install git (apt-get install git).');
    if (limitsSupported) ok('CPU and memory limits for agents (prlimit)');
    else warn('no prlimit: agents run without CPU and memory limits', 'On Linux, install util-linux.');
    let config: ReturnType<typeof loadLocalConfig>;
    try {
      config = loadLocalConfig();
      ok(`configuration (AUTODEV_HOME=${config.home})`);
    } catch (err) {
      bad('configuration', (err as Error).message);
      if (o.json) report();
      process.exitCode = 1;
      return;
    }
    const sandbox = await resolveSandbox(config.sandbox);
    if (sandbox.mode === 'bwrap' || sandbox.mode === 'uid') ok(describeSandbox(sandbox));
    else if (sandbox.mode === 'off')
      warn(
        describeSandbox(sandbox),
        'Agents can read and change everything the server can. Unset AUTODEV_SANDBOX to contain them.',
      );
    else bad('no sandbox for agents', describeSandbox(sandbox));
    if (existsSync(config.keyFile)) ok('signing key');
    else warn('no signing key yet', 'It is created on the first `npm start`.');
    let items: ProviderInfo[] | undefined;
    try {
      const res = await fetch(`${baseUrl()}/healthz`);
      if (!res.ok) throw new Error(`status ${res.status}`);
      ok(`server at ${baseUrl()}`);
      items = (await (await client({})).providers()).items;
    } catch {
      warn(
        `no server at ${baseUrl()}`,
        'Start it with `npm start` (providers below are as this shell sees them).',
      );
    }
    if (!items) {
      const { SqliteTaskStore } = await import('../lib/local/sqlite-store.js');
      const states = existsSync(config.dbFile)
        ? await new SqliteTaskStore(config.dbFile).listProviderStates()
        : [];
      items = await describeProviders(config, states);
    }
    const usable = items.filter((p) => p.path && p.credentials !== 'missing');
    for (const p of items) {
      if (!p.path)
        warn(
          `${p.name}: not installed`,
          `Install it, or set AUTODEV_${p.name.toUpperCase().replace(/-/g, '_')}_BIN to its path.`,
        );
      else if (p.credentials === 'missing')
        warn(
          `${p.name}: no credentials`,
          `Set one of ${(p.credentialEnv ?? []).join(', ')} in the environment or ${join(config.home, 'secrets.env')}.`,
        );
      else if (p.breaker !== 'closed')
        warn(
          `${p.name}: circuit breaker ${p.breaker}`,
          'Recent attempts failed; it recovers by itself after the cool-down.',
        );
      else ok(`${p.name} ${p.version ?? ''} (credentials ${p.credentials})`);
    }
    if (usable.length === 0)
      bad(
        'no usable provider',
        'Install at least one agent CLI and give it credentials (see docs/providers.md).',
      );
    if (o.json) report();
    else say(problems ? `\n${problems} problem(s) found.\n` : '\nAll good.\n');
    if (problems) process.exitCode = 1;
  });

const schedule = program.command('schedule').description('recurring tasks (operator)');

withToken(
  schedule
    .command('create')
    .description('submit a task on a schedule')
    .requiredOption('--name <name>', 'a name (lowercase letters, digits, "_" and "-")')
    .requiredOption('--cron <expression>', 'when: "cron(0 3 * * ? *)" or "rate(1 day)" (EventBridge syntax)')
    .option('--timezone <zone>', 'IANA time zone of the cron expression', 'UTC')
    .requiredOption('--repo <repo>', 'git URL (https, ssh) or, locally, a path')
    .requiredOption('--prompt <text>', 'what the agent should do')
    .option('--role <role>', 'agent role')
    .option('--provider <provider>', 'preferred provider, or "auto"')
    .option('--pin', 'keep to --provider: no failover'),
).action(async (o) => {
  if (o.file) return submitFile(o);
  if (!o.repo || !o.prompt) throw new InvalidArgumentError('submit needs --repo and --prompt, or --file');
  const repo =
    /^[./~]/.test(o.repo) || (!o.repo.includes(':') && existsSync(o.repo)) ? resolve(o.repo) : o.repo;
  const created = await (await client(o)).createSchedule({
    name: o.name,
    schedule: o.cron,
    timezone: o.timezone,
    task: {
      repo,
      prompt: o.prompt,
      ...(o.role && { role: o.role }),
      ...(o.provider && { provider: o.provider }),
      ...(o.pin && { pin: true }),
    },
  });
  print(o, created, () => created.id);
});

withToken(schedule.command('list').description("list your tenant's schedules")).action(async (o) => {
  const page = await (await client(o)).listSchedules();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return;
  }
  for (const s of page.items) {
    process.stdout.write(
      `${s.id}  ${s.name.padEnd(20)}  ${s.schedule} ${s.timezone}${s.enabled ? '' : ' (disabled)'}\n`,
    );
  }
});

withToken(schedule.command('delete').description('delete a schedule').argument('<id>')).action(
  async (id, o) => {
    await (await client(o)).deleteSchedule(id);
    print(o, { deleted: id }, () => `deleted ${id}`);
  },
);

withToken(
  program
    .command('audit')
    .description("your tenant's audit trail, newest first (admin)")
    .option('--action <action>', 'only this action, e.g. task.cancel')
    .option('--subject <subject>', "only this caller (the token's subject)")
    .option('--result <result>', 'only this HTTP status, or ok, or refused')
    .option('--since <time>', 'from this ISO time')
    .option('--until <time>', 'up to this ISO time')
    .option('--limit <n>', 'how many', positiveInt, 50)
    .option('--cursor <cursor>', 'the next page, as the previous one said'),
).action(async (o) => {
  // a token minted from the local key is an admin's: the trail is an admin's to read
  const page = await (await client(o, 'admin')).audit({
    action: o.action,
    subject: o.subject,
    result: o.result,
    since: o.since,
    until: o.until,
    limit: o.limit,
    cursor: o.cursor,
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return;
  }
  for (const e of page.items) {
    process.stdout.write(
      `${e.at}  ${String(e.status)}  ${e.outcome.padEnd(14)}  ${(e.subject ?? '-').padEnd(16)}  ${e.action.padEnd(16)}  ${e.target ?? '-'}  ${e.requestId}\n`,
    );
  }
  if (page.nextCursor) process.stdout.write(`(more: --cursor ${page.nextCursor})\n`);
});

const tenants = program.command('tenants').description("a tenant's data (admin)");

withToken(
  tenants
    .command('erase')
    .description(
      "erase a tenant's tasks, logs, schedules, idempotency keys, branch records and audit entries older than the legal hold (admin of that tenant; cancel its unfinished tasks first)",
    )
    .argument('<tenant>'),
).action(async (tenant: string, o) => {
  // a token minted from the local key is that tenant's admin's: only its own admin may erase it
  const report = await (await client(o, 'admin', tenant)).eraseTenant(tenant);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  process.stdout.write(`erased tenant ${report.tenant} at ${report.at}:\n`);
  for (const [kind, n] of Object.entries(report.erased)) process.stdout.write(`  ${kind.padEnd(16)} ${n}\n`);
  process.stdout.write(`audit entries since ${report.auditKeptSince} are kept (legal hold)\n`);
});

program
  .command('completion')
  .description('print a shell completion script: source <(autodev completion bash)')
  .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
  .option('--json', 'print JSON')
  .action((shell: Shell, o: { json?: boolean }) => {
    const script = completionScript(program, shell);
    if (o.json) print(o, { shell, script }, () => '');
    else process.stdout.write(script);
  });

program.parseAsync().catch((err: unknown) => {
  // with --json, the error too is one JSON document on stdout
  if (process.argv.includes('--json')) {
    const code = err instanceof ApiClientError ? err.code : 'failed';
    const details = err instanceof ApiClientError ? err.details : undefined;
    const message = err instanceof Error ? err.message : String(err);
    process.stdout.write(
      `${JSON.stringify({ error: { code, message, ...(details !== undefined && { details }) } })}\n`,
    );
  }
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
