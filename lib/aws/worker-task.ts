import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { parseModelPrices } from '../core/metering.js';
import { type ProviderStateStore, recordRateLimit } from '../core/provider-health.js';
import { parseQuotas } from '../core/quotas.js';
import type { RoleSettingsStore } from '../core/role-settings.js';
import { BUILT_IN_ROLES } from '../core/roles.js';
import type { Attempt, Task } from '../core/schemas.js';
import { type TenantSpendStore, tenantSpendHooks } from '../core/tenant-spend.js';
import { LEASE_MARGIN_SECONDS } from '../core/workflow.js';
import { startLeaseHeartbeat } from '../core/workflow-engine.js';
import { ModelGateway } from '../gateway/server.js';
import {
  ATTR_TASK_ID,
  agentTraceContext,
  attemptAttributes,
  taskContext,
  withSpan,
} from '../telemetry/tracing.js';
import { createDrivers, ownEnv } from '../worker/drivers/index.js';
import { DEFAULT_FORGES, ForgeConfig } from '../worker/forge/resolve.js';
import { KnownSecrets, secretsIn } from '../worker/known-secrets.js';
import { type AttemptReport, type ModelGatewayAccess, runAttempt } from '../worker/run-attempt.js';
import type { Sandbox } from '../worker/sandbox.js';
import { GitWorkspaces, tokenCredential } from '../worker/workspace.js';
import type { DynamoTaskStore } from './dynamo-task-store.js';
import { ecsTaskArn } from './ecs-metadata.js';

/** Tokens for git and the forges: used by the worker, never shown to the agent. */
const FORGE_TOKEN_NAMES = ['GIT_TOKEN', 'GITHUB_TOKEN', 'GITLAB_TOKEN'];

/** What the worker container is told: the stack sets the fixed part, the state machine the rest. */
export const WorkerEnv = z.object({
  AUTODEV_TASK_ID: z.string().min(1),
  AUTODEV_TENANT: z.string().min(1),
  AUTODEV_ATTEMPT: z.coerce.number().int().positive(),
  TASKS_TABLE_NAME: z.string().min(1),
  PROVIDER_SECRET_ARN: z.string().optional(),
  AUTODEV_WORKSPACES: z.string().default('/workspace'),
  AUTODEV_BRANCH_PREFIX: z.string().default('autodev/'),
  /** Without a forge, keep the merge train branch (lib/worker/merge-train.ts). */
  AUTODEV_MERGE_TRAIN: z.enum(['on', 'off']).default('off'),
  AUTODEV_GIT_AUTHOR_NAME: z.string().default('AutoDev'),
  AUTODEV_GIT_AUTHOR_EMAIL: z.string().default('autodev@users.noreply.github.com'),
  AUTODEV_CANCEL_POLL_MS: z.coerce.number().int().min(100).default(10_000),
  /** How often the worker renews its task's lease, and how far ahead each renewal runs. */
  AUTODEV_HEARTBEAT_MS: z.coerce.number().int().min(100).default(60_000),
  AUTODEV_LEASE_SECONDS: z.coerce.number().positive().default(LEASE_MARGIN_SECONDS),
  /** Set by ECS in every container: where the worker reads its own task ARN (recorded for cancel). */
  ECS_CONTAINER_METADATA_URI_V4: z.string().optional(),
  /** Forge hosts beyond github.com and gitlab.com (JSON list of {host, kind, apiBaseUrl, tokenSecret}). */
  AUTODEV_FORGES: z.string().optional(),
  /** `on`: bubblewrap where it runs, else a user switch; `uid`: the user switch only; `off`: as the worker. */
  AUTODEV_SANDBOX: z.enum(['on', 'uid', 'off']).default('on'),
  /** The user the agent and gates run as (the image's `agent`). */
  AUTODEV_AGENT_UID: z.coerce.number().int().min(1).default(10002),
  AUTODEV_AGENT_GID: z.coerce.number().int().min(1).default(10002),
  /**
   * `on`: the supervisor runs the model gateway beside the attempt and the agent gets only a session
   * credential and the gateway's address; `off`: the agent gets its provider's key (today's path).
   */
  AUTODEV_MODEL_GATEWAY: z.enum(['on', 'off']).default('on'),
  /** Per-tenant quotas as the API has them (JSON); the worker holds attempts to `usdPerDay`. */
  AUTODEV_QUOTAS: z.string().default(''),
  /** Per-model prices over the built-in table (JSON `{"model": {"input": 3, "output": 15}}`, USD per million tokens). */
  AUTODEV_MODEL_PRICES: z.string().default(''),
});
export type WorkerEnv = z.infer<typeof WorkerEnv>;

export function readWorkerEnv(env: NodeJS.ProcessEnv): WorkerEnv {
  const parsed = WorkerEnv.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid worker environment: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

export interface WorkerDeps {
  env: WorkerEnv;
  store: Pick<DynamoTaskStore, 'getById' | 'put' | 'appendLogs' | 'putAttemptReport'> &
    Partial<ProviderStateStore & TenantSpendStore>;
  /** Provider credentials (and GIT_TOKEN) from Secrets Manager. */
  secrets: Record<string, string>;
  /** Base environment for agents (PATH, LANG, proxies). */
  baseEnv: Record<string, string>;
  /** Aborted when the container is asked to stop (SIGTERM from ECS StopTask). */
  signal: AbortSignal;
  /**
   * How the agent and gates are separated from this supervisor (another user, in bubblewrap when it
   * can run); `unavailable` fails the attempt before anything runs.
   */
  sandbox?: Sandbox;
  /**
   * Full-access mode per tenant and agent role (DynamoRoleSettings), read as the attempt starts:
   * where an admin turned it on for the task's role, a bubblewrap sandbox keeps the machine's
   * network instead of reaching only the model gateway.
   */
  roleSettings?: Pick<RoleSettingsStore, 'get'>;
}

const usage0 = { inputTokens: 0, outputTokens: 0, costUsd: 0 };

/**
 * One attempt inside the Fargate worker: checks the task still runs this attempt, runs it with the
 * worker library (`runAttempt`), streams its log lines to the store, stops on cancel, and stores the
 * report for the workflow's record step. Returns the report (undefined when the attempt is stale).
 */
export async function runWorkerTask(deps: WorkerDeps): Promise<AttemptReport | undefined> {
  const { env, store } = deps;
  const task = await store.getById(env.AUTODEV_TASK_ID);
  const attempt = task?.attempts.find((a) => a.number === env.AUTODEV_ATTEMPT);
  if (
    !task ||
    task.tenant !== env.AUTODEV_TENANT ||
    task.status !== 'running' ||
    attempt?.outcome !== 'running'
  ) {
    return undefined;
  }
  const pending: string[] = [];
  let flushing = Promise.resolve();
  const flush = () => {
    const lines = pending.splice(0);
    flushing = flushing.then(() => store.appendLogs(task.id, lines, new Date())).catch(() => undefined);
    return flushing;
  };
  const log = (line: string) => pending.push(line);
  const abort = new AbortController();
  deps.signal.addEventListener('abort', () => abort.abort(), { once: true });
  const flushTimer = setInterval(flush, 1000);
  const cancelTimer = setInterval(() => {
    void store
      .getById(task.id)
      .then((t) => {
        if (t?.cancelRequested) abort.abort();
      })
      .catch(() => undefined);
  }, env.AUTODEV_CANCEL_POLL_MS);
  const heartbeat = startLeaseHeartbeat({
    store,
    taskId: task.id,
    attempt: attempt.number,
    everyMs: env.AUTODEV_HEARTBEAT_MS,
    leaseMs: env.AUTODEV_LEASE_SECONDS * 1000,
    workerRef: () => ecsTaskArn(env.ECS_CONTAINER_METADATA_URI_V4),
    onLost: () => {
      log(`attempt ${attempt.number} lost its lease (the task moved on); stopping`);
      abort.abort();
    },
  });
  const sandbox = await attemptSandbox(deps, task, log);
  const gateway = await startWorkerGateway(env);
  /** Provider health writes of rate limits the gateway saw: all in DynamoDB before the report is. */
  const healthWrites = new Set<Promise<void>>();
  try {
    const role = BUILT_IN_ROLES[task.role];
    const drivers = createDrivers(process.env);
    const driver = drivers[attempt.provider];
    const secrets = { ...deps.secrets };
    const forges = ForgeConfig.parse(env.AUTODEV_FORGES ? JSON.parse(env.AUTODEV_FORGES) : []);
    // the agent sees provider credentials, never the git or forge tokens (the worker uses those)
    for (const name of [
      ...FORGE_TOKEN_NAMES,
      ...forges.map((f) => f.tokenSecret),
      ...DEFAULT_FORGES.map((f) => f.tokenSecret),
    ])
      if (name) delete secrets[name];
    const report: AttemptReport =
      role && driver
        ? await withSpan(
            'attempt',
            () =>
              runAttempt({
                task,
                role,
                // each CLI gets its own credentials and settings, never another provider's key
                provider: { name: attempt.provider, driver, bin: driver.bin, env: ownEnv(driver, secrets) },
                // every CLI of the image, for a reviewing provider named in .autodev.yml
                providers: Object.fromEntries(
                  Object.entries(drivers).map(([name, d]) => [
                    name,
                    { name, driver: d, bin: d.bin, env: ownEnv(d, secrets) },
                  ]),
                ),
                workspaces: new GitWorkspaces({
                  root: join(env.AUTODEV_WORKSPACES, 'worktrees'),
                  mirrors: join(env.AUTODEV_WORKSPACES, 'mirrors'),
                  authorName: env.AUTODEV_GIT_AUTHOR_NAME,
                  authorEmail: env.AUTODEV_GIT_AUTHOR_EMAIL,
                  branchPrefix: env.AUTODEV_BRANCH_PREFIX,
                  // the token reaches each git command through a pipe, never the environment
                  credentialFor: tokenCredential(deps.secrets.GIT_TOKEN),
                }),
                baseEnv: deps.baseEnv,
                sandbox,
                // github.com and gitlab.com are known without configuration
                forges,
                secrets: deps.secrets,
                // every value of the secret and the worker's own credentials: never pushed, never logged
                knownSecrets: new KnownSecrets({ ...secretsIn(process.env), ...deps.secrets }),
                // the real keys stay in this process: the agent gets a session credential for the gateway
                modelGateway: gateway && {
                  ...gatewayAccess(deps, task, attempt, log, gateway, healthWrites),
                  // model calls hang under the agent's span
                  traceContext: agentTraceContext(task.id),
                },
                defaultTimeoutSeconds: role.timeoutSeconds,
                mergeTrain: env.AUTODEV_MERGE_TRAIN === 'on',
                log,
                signal: abort.signal,
              }),
            // the task's trace, from the traceparent stored at submission
            {
              parent: taskContext(task),
              attributes: {
                [ATTR_TASK_ID]: task.id,
                ...attemptAttributes({ attempt: attempt.number, provider: attempt.provider }),
              },
            },
          )
        : {
            ok: false,
            errorClass: 'not_installed',
            message: role
              ? `This worker image has no driver for provider "${attempt.provider}".`
              : `Unknown role "${task.role}".`,
            usage: usage0,
            changedFiles: [],
          };
    await Promise.all(healthWrites);
    await store.putAttemptReport(task.id, attempt.number, report);
    log(
      `attempt ${attempt.number} reported: ${report.ok ? 'ok' : `${report.errorClass}: ${report.message ?? ''}`}`,
    );
    return report;
  } finally {
    clearInterval(flushTimer);
    clearInterval(cancelTimer);
    await gateway?.close();
    await heartbeat.stop();
    await flush();
  }
}

/**
 * The attempt's sandbox: the worker's, with the machine's network where an admin turned full access
 * on for the task's tenant and role (as the local executor does). A setting that cannot be read
 * leaves the sandbox as it is.
 */
async function attemptSandbox(
  deps: WorkerDeps,
  task: Task,
  log: (line: string) => void,
): Promise<Sandbox | undefined> {
  const sandbox = deps.sandbox;
  if (sandbox?.mode !== 'bwrap' || !deps.roleSettings) return sandbox;
  const setting = await deps.roleSettings.get(task.tenant, task.role).catch((err: unknown) => {
    log(
      `could not read the full-access setting of role ${task.role} (${String(err)}); the sandbox stays closed`,
    );
    return undefined;
  });
  if (!setting?.fullAccess) return sandbox;
  log(
    `full access: role ${task.role} runs with the machine's network (turned on by ${setting.updatedBy} at ${setting.updatedAt})`,
  );
  return { ...sandbox, fullAccess: true };
}

/** The model gateway on the worker's loopback, when AUTODEV_MODEL_GATEWAY is on. */
async function startWorkerGateway(env: WorkerEnv): Promise<ModelGateway | undefined> {
  if (env.AUTODEV_MODEL_GATEWAY === 'off') return undefined;
  return ModelGateway.start({ prices: parseModelPrices(env.AUTODEV_MODEL_PRICES, 'AUTODEV_MODEL_PRICES') });
}

/**
 * The attempt's access to the gateway: a 429/529/503 reaches the provider's breaker and token
 * bucket in DynamoDB at once (before the attempt ends), and each call's cost the tenant's counter.
 */
function gatewayAccess(
  deps: WorkerDeps,
  task: Task,
  attempt: Attempt,
  log: (line: string) => void,
  gateway: ModelGateway,
  pending: Set<Promise<void>>,
): ModelGatewayAccess {
  const { store, env } = deps;
  const health = store.getProviderState && store.putProviderState ? (store as ProviderStateStore) : undefined;
  const spend = store.addTenantSpend && store.tenantSpend ? (store as TenantSpendStore) : undefined;
  const quotas = parseQuotas(env.AUTODEV_QUOTAS);
  return {
    gateway,
    attemptId: `${task.id}/${attempt.number}`,
    // the attempt's provider, or the review agent's for the reviewer's session
    onRateLimit: (e, provider) => {
      if (!health) return;
      const write = recordRateLimit(health, provider, e.resetAt, Date.now()).then(
        () => undefined,
        (err: unknown) => log(`could not record the rate limit in provider health: ${String(err)}`),
      );
      pending.add(write);
      void write.finally(() => pending.delete(write));
    },
    ...(spend &&
      tenantSpendHooks(spend, quotas, task.tenant, (err) =>
        log(`could not count the tenant's model spend: ${String(err)}`),
      )),
  };
}
