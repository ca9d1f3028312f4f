import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { createApiHandler } from '../api/handler.js';
import { TaskService } from '../core/tasks.js';
import { GitWorkspaces } from '../worker/workspace.js';
import { LocalJwtAuthenticator, loadOrCreateSigningKey } from './auth.js';
import type { LocalConfig } from './config.js';
import { LocalExecutor } from './executor.js';
import { createGateway } from './http-gateway.js';
import { PlatformMetrics } from './metrics.js';
import { describeProviders } from './providers.js';
import { SqliteTaskStore } from './sqlite-store.js';

export interface LocalPlatform {
  url: string;
  server: Server;
  store: SqliteTaskStore;
  executor: LocalExecutor;
  logger: Logger;
  keyCreated: boolean;
  /** Stops taking requests and tasks, drains running tasks (or re-queues them), closes the store. */
  close(drainMs?: number): Promise<void>;
}

/** Wires the local platform: SQLite store, the shared API handler behind an HTTP server, the executor. */
export async function startLocalPlatform(config: LocalConfig): Promise<LocalPlatform> {
  const logger = new Logger({ serviceName: 'autodev', logLevel: config.logLevel as 'INFO' });
  const { key, created } = loadOrCreateSigningKey(config.keyFile);
  const store = new SqliteTaskStore(config.dbFile);
  const workspaces = new GitWorkspaces({
    root: config.workspacesDir,
    mirrors: config.mirrorsDir,
    authorName: config.author.name,
    authorEmail: config.author.email,
    branchPrefix: config.branchPrefix,
  });
  let executor: LocalExecutor | undefined;
  const metrics = new PlatformMetrics(store, () => executor?.activeCount ?? 0, {
    states: () => store.listProviderStates(),
    breaker: config.breaker,
  });
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
    health: { store, breaker: config.breaker, rate: config.rate },
    events: metrics,
    log: (msg, extra) => logger.info(msg, extra ?? {}),
  });
  const service = new TaskService({
    store,
    notifier: executor,
    roles: config.roles,
    knownProviders: Object.keys(config.providers),
    allowLocalRepos: true,
  });
  const authenticator = new LocalJwtAuthenticator(key);
  const handler = createApiHandler({
    service,
    authenticator,
    logger,
    providers: async () => describeProviders(config, await store.listProviderStates()),
  });
  const server = createGateway({
    handler,
    authenticator,
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
  if (config.executor) await executor.start();
  const exec = executor;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${config.host}:${port}`,
    server,
    store,
    executor: exec,
    logger,
    keyCreated: created,
    close(drainMs = config.drainMs) {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        await exec.stop(drainMs);
        server.closeAllConnections();
        await serverClosed;
        store.close();
      })();
      return closing;
    },
  };
}
