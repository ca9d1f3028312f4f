import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { createApiHandler, WEBHOOK_SUBJECT } from '../api/handler.js';
import { TenantErasure } from '../core/erasure.js';
import { retentionMs } from '../core/retention.js';
import { RoleSettingsService } from '../core/role-settings.js';
import { figuresFrom } from '../core/routing.js';
import { ScheduleService } from '../core/schedules.js';
import type { Task } from '../core/schemas.js';
import { TaskService } from '../core/tasks.js';
import { repoRoot } from '../infra/paths.js';
import { startTelemetry } from '../telemetry/sdk.js';
import { activeTraceParent, withTraceId } from '../telemetry/tracing.js';
import { parseRepoUrl } from '../worker/forge/repo-url.js';
import { resolveForge } from '../worker/forge/resolve.js';
import { KnownSecrets } from '../worker/known-secrets.js';
import { notifyTaskFinished } from '../worker/notify.js';
import { describeSandbox, resolveSandbox, type Sandbox } from '../worker/sandbox.js';
import { GitWorkspaces, tokenCredential } from '../worker/workspace.js';
import { LocalJwtAuthenticator, loadOrCreateSigningKey } from './auth.js';
import type { LocalConfig } from './config.js';
import { DEFAULT_TICK_MS, LocalCron } from './cron.js';
import { LocalExecutor } from './executor.js';
import { FairShareQueue } from './fair-queue.js';
import { createGateway } from './http-gateway.js';
import { PlatformMetrics } from './metrics.js';
import { OidcIssuer } from './oidc.js';
import { describeProviders } from './providers.js';
import { RetentionSweep } from './retention-sweep.js';
import { SqliteAuditLog } from './sqlite-audit.js';
import { SqliteRoleSettings } from './sqlite-role-settings.js';
import { SqliteScheduleStore } from './sqlite-schedules.js';
import { SqliteTaskStats } from './sqlite-stats.js';
import { SqliteTaskStore } from './sqlite-store.js';
import { WebAssets } from './web-assets.js';
import { SqliteDeliveryLog } from './webhook-deliveries.js';

export interface LocalPlatform {
  url: string;
  server: Server;
  store: SqliteTaskStore;
  executor: LocalExecutor;
  /** The in-process scheduler of recurring tasks. */
  cron: LocalCron;
  logger: Logger;
  keyCreated: boolean;
  /** How agents run here (bubblewrap, unconfined, or not at all), as checked at start. */
  sandbox: Sandbox;
  /** Stops taking requests and tasks, drains running tasks (or re-queues them), closes the store. */
  close(drainMs?: number): Promise<void>;
}

/** Wires the local platform: SQLite store, the shared API handler behind an HTTP server, the executor. */
export async function startLocalPlatform(config: LocalConfig): Promise<LocalPlatform> {
  const logger = new Logger({ serviceName: 'autodev', logLevel: config.logLevel as 'INFO' });
  // OpenTelemetry: spans by OTLP where OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; the trace
  // context flows through the process either way (the trace id in each task's log lines)
  const telemetry = startTelemetry();
  const { key, created } = loadOrCreateSigningKey(config.keyFile);
  const store = new SqliteTaskStore(config.dbFile);
  const workspaces = new GitWorkspaces({
    root: config.workspacesDir,
    mirrors: config.mirrorsDir,
    authorName: config.author.name,
    authorEmail: config.author.email,
    branchPrefix: config.branchPrefix,
    // a token for https remotes (GIT_TOKEN), handed to each git command through a pipe
    credentialFor: tokenCredential(config.secrets.GIT_TOKEN),
  });
  const deliveries = new SqliteDeliveryLog(config.dbFile);
  const sandbox = await resolveSandbox(config.sandbox);
  if (sandbox.mode === 'unavailable' || sandbox.mode === 'off') logger.warn(describeSandbox(sandbox));
  // the public URL is known once the server listens (AUTODEV_PORT=0 picks a free port)
  let publicUrl = config.publicUrl;
  const pending = new Set<Promise<unknown>>();
  /** Side effects of a finished task (chat notices, the issue's comment): never thrown, never awaited by the executor. */
  const afterTask = (what: string, task: Task, work: () => Promise<unknown>) => {
    const p = work()
      .catch((err: unknown) => logger.warn(`${what} failed`, { taskId: task.id, err: String(err) }))
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  const roleSettings = new RoleSettingsService(new SqliteRoleSettings(store.connection), () => config.roles);
  let executor: LocalExecutor | undefined;
  const metrics = new PlatformMetrics(
    store,
    () => executor?.activeCount ?? 0,
    { states: () => store.listProviderStates(), breaker: config.breaker },
    () => store.listWaiting(),
  );
  const taskStats = new SqliteTaskStats(store.connection);
  executor = new LocalExecutor({
    store,
    workspaces,
    roles: config.roles,
    providers: config.providers,
    concurrency: config.concurrency,
    leaseMs: config.leaseMs,
    defaultTimeoutSeconds: config.defaultTimeoutSeconds,
    retryPolicy: config.retryPolicy,
    baseEnv: config.agentEnv,
    keepWorkspaces: config.keepWorkspaces,
    mergeTrain: config.mergeTrain,
    modelGateway: config.modelGateway
      ? { prices: config.modelPrices, loopThreshold: config.loopThreshold }
      : false,
    tenantSpend: { store, quotas: config.quotas },
    health: { store, breaker: config.breaker, rate: config.rate },
    routing: {
      figures: figuresFrom(taskStats, config.routing.windowDays, config.routing.cacheMs),
      policy: config.routing,
    },
    events: {
      attemptEnded: (provider, report, durationMs) => metrics.attemptEnded(provider, report, durationMs),
      taskRetrying: () => metrics.taskRetrying(),
      agentStarted: (latencyMs) => metrics.agentStarted(latencyMs),
      taskEnded: (task) => {
        metrics.taskEnded(task);
        const taskUrl = publicUrl ? `${publicUrl}/v1/tasks/${task.id}` : undefined;
        if (config.notifications.length > 0) {
          afterTask('notification', task, async () => {
            const results = await notifyTaskFinished(task, config.notifications, {
              secrets: config.secrets,
              links: { taskUrl },
            });
            for (const r of results.filter((x) => !x.ok)) {
              logger.warn('a notification was not delivered', { taskId: task.id, ...r });
            }
          });
        }
        const issue = issueOf(task);
        if (issue) {
          afterTask('the comment on the issue', task, () => commentOnIssue(task, issue, config));
        }
      },
    },
    log: (msg, extra) => logger.info(msg, withTraceId(extra)),
    forges: config.forges,
    secrets: config.secrets,
    // the signing key too: an agent that printed or committed it could mint any tenant's tokens
    knownSecrets: new KnownSecrets({
      ...config.secretValues,
      AUTODEV_SIGNING_KEY: Buffer.from(key).toString('base64url'),
    }),
    publicUrl: () => publicUrl,
    sandbox,
    queue: new FairShareQueue(store, () => config.roles, config.fairShares),
    // full access (an admin's setting per tenant and role): the machine's network for that role's agents
    sandboxFor: async (task) =>
      sandbox.mode === 'bwrap' && (await roleSettings.fullAccess(task.tenant, task.role))
        ? { ...sandbox, fullAccess: true }
        : undefined,
  });
  const service = new TaskService({
    store,
    notifier: executor,
    roles: config.roles,
    knownProviders: Object.keys(config.providers),
    repoPolicy: config.repoPolicy,
    quotas: config.quotas,
    spend: store,
    // a task's trace is that of the request that submitted it
    traceParent: activeTraceParent,
  });
  const scheduleStore = new SqliteScheduleStore(config.dbFile);
  const cron = new LocalCron({
    schedules: scheduleStore,
    tasks: service,
    // AUTODEV_SCHEDULER_TICK_MS: how often due schedules are looked for (tests shorten it)
    tickMs: Number(process.env.AUTODEV_SCHEDULER_TICK_MS) || DEFAULT_TICK_MS,
    log: (msg, extra) => logger.info(msg, extra ?? {}),
  });
  const schedules = new ScheduleService({
    store: scheduleStore,
    scheduler: cron,
    repoPolicy: config.repoPolicy,
  });
  const authenticator = new LocalJwtAuthenticator(key, {
    maxTtlSeconds: config.maxTokenTtlSeconds,
    clockSkewSeconds: config.clockSkewSeconds,
    oidc: config.oidc
      ? new OidcIssuer(config.oidc, (msg, extra) => logger.warn(msg, extra ?? {}))
      : undefined,
  });
  const auditLog = new SqliteAuditLog(store.connection);
  const erasure = new TenantErasure({
    tasks: store,
    spend: store,
    schedules: { store: scheduleStore, scheduler: cron },
    audit: auditLog,
    auditHoldDays: config.auditHoldDays,
  });
  const keepMs = retentionMs(config.retention.days);
  const sweep = keepMs
    ? new RetentionSweep({
        store,
        deliveries,
        keepMs,
        everyMs: config.retention.sweepEveryMs,
        log: (msg, extra) => logger.info(msg, extra ?? {}),
      })
    : undefined;
  const handler = createApiHandler({
    service,
    auditLog,
    erasure,
    authenticator,
    logger,
    schedules,
    stats: taskStats,
    roleSettings,
    highPriorityRoles: config.highPriorityRoles,
    providers: async () => describeProviders(config, await store.listProviderStates()),
    githubWebhook: {
      secret: config.githubWebhook.secret,
      tenant: config.githubWebhook.tenant,
      deliveries,
    },
  });
  const server = createGateway({
    handler,
    authenticator,
    limits: config.http,
    assets: new WebAssets(join(repoRoot(), 'web'), config.webSignIn),
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    }),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  publicUrl ??= `http://${config.host}:${port}`;
  if (config.executor) await executor.start();
  await cron.start();
  sweep?.start();
  const exec = executor;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${config.host}:${port}`,
    server,
    store,
    executor: exec,
    cron,
    logger,
    keyCreated: created,
    sandbox,
    close(drainMs = config.drainMs) {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        await cron.stop();
        sweep?.stop();
        await exec.stop(drainMs);
        server.closeAllConnections();
        await serverClosed;
        // notices and comments of the last tasks, for a little while
        await Promise.race([
          Promise.allSettled([...pending]),
          new Promise((r) => setTimeout(r, 5000).unref()),
        ]);
        deliveries.close();
        auditLog.close();
        scheduleStore.close();
        store.close();
        await telemetry.shutdown();
      })();
      return closing;
    },
  };
}

/** The GitHub issue a webhook-made task came from: its `github:<owner>/<repo>#<number>` label. */
export function issueOf(task: Task): { fullName: string; number: number } | undefined {
  if (task.createdBy !== WEBHOOK_SUBJECT) return undefined;
  for (const label of task.labels) {
    const m = label.match(/^github:([\w.-]+\/[\w.-]+)#(\d+)$/);
    if (m) return { fullName: m[1] as string, number: Number(m[2]) };
  }
  return undefined;
}

/** What became of the task, said on the issue it came from. */
export function issueComment(task: Task): string {
  const head = `AutoDev task \`${task.id}\``;
  if (task.status === 'succeeded') {
    const where = task.pullRequest
      ? `: pull request ${task.pullRequest.url}`
      : task.branch
        ? `: branch \`${task.branch}\` (no pull request)`
        : '';
    const summary = task.summary?.trim();
    return `${head} succeeded${where}${summary ? `\n\n> ${summary.slice(0, 2000).replace(/\n/g, '\n> ')}` : ''}`;
  }
  if (task.status === 'cancelled') return `${head} was cancelled.`;
  return `${head} failed (\`${task.error?.code ?? 'failed'}\`): ${task.error?.message ?? 'no message'}`;
}

async function commentOnIssue(
  task: Task,
  issue: { fullName: string; number: number },
  config: LocalConfig,
): Promise<void> {
  // only on the repository the task ran on: a label alone never picks where AutoDev writes
  if (parseRepoUrl(task.repo)?.path !== issue.fullName) return;
  const forge = resolveForge(task.repo, config.forges, config.secrets);
  if (forge?.kind !== 'github') return;
  await forge.comment({ repo: task.repo, number: issue.number, body: issueComment(task) });
}
