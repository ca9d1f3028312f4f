import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { retentionSecondsFromEnv } from '../../lib/aws/api-settings.js';
import { DynamoRoleSettings } from '../../lib/aws/dynamo-role-settings.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { loadProviderSecrets } from '../../lib/aws/secrets.js';
import { readWorkerEnv, runWorkerTask } from '../../lib/aws/worker-task.js';
import { startTelemetry } from '../../lib/telemetry/sdk.js';
import { describeSandbox, resolveSandbox } from '../../lib/worker/sandbox.js';

/**
 * The Fargate worker: runs one attempt of one task and stores its report for the state machine.
 * Exit 0 whenever a report was written (the record step decides what a failure means); exit 1 when
 * the worker itself could not run (the record step then records a crash).
 */
const BASE_VARS = [
  'PATH',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
  'SSL_CERT_FILE',
  'NODE_EXTRA_CA_CERTS',
  'HTTPS_PROXY',
  'NO_PROXY',
];

async function main(): Promise<number> {
  const env = readWorkerEnv(process.env);
  const client = new DynamoDBClient({});
  const store = new DynamoTaskStore({
    client,
    tableName: env.TASKS_TABLE_NAME,
    // log lines expire with the retention, as the functions' task items do
    retentionSeconds: retentionSecondsFromEnv(process.env),
  });
  const secrets = env.PROVIDER_SECRET_ARN ? await loadProviderSecrets(env.PROVIDER_SECRET_ARN) : {};
  const baseEnv: Record<string, string> = { TERM: 'dumb', CI: '1' };
  for (const k of BASE_VARS) if (process.env[k]) baseEnv[k] = process.env[k] as string;
  // privilege separation: this process keeps the AWS credentials and tokens; the agent and gates
  // run as another user in a fresh environment (BASE_VARS and the provider's keys only)
  const sandbox = await resolveSandbox({
    setting: env.AUTODEV_SANDBOX,
    user: { uid: env.AUTODEV_AGENT_UID, gid: env.AUTODEV_AGENT_GID },
    hidden: [env.AUTODEV_WORKSPACES],
    allowUidOnly: true,
  });
  process.stdout.write(
    `${JSON.stringify({ level: sandbox.mode === 'unavailable' ? 'ERROR' : 'INFO', message: describeSandbox(sandbox) })}\n`,
  );
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  // spans by OTLP/HTTP where OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set (an ADOT collector for X-Ray)
  const telemetry = startTelemetry(process.env, 'autodev-worker');
  const report = await runWorkerTask({
    env,
    store,
    secrets,
    baseEnv,
    signal: stop.signal,
    sandbox,
    // full-access mode, an admin's setting per tenant and agent role
    roleSettings: new DynamoRoleSettings(client, env.TASKS_TABLE_NAME),
  }).finally(() => telemetry.shutdown());
  const line = report
    ? {
        taskId: env.AUTODEV_TASK_ID,
        attempt: env.AUTODEV_ATTEMPT,
        ok: report.ok,
        errorClass: report.errorClass,
      }
    : {
        taskId: env.AUTODEV_TASK_ID,
        attempt: env.AUTODEV_ATTEMPT,
        skipped: 'the attempt is no longer running',
      };
  process.stdout.write(`${JSON.stringify({ level: 'INFO', message: 'worker done', ...line })}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ level: 'ERROR', message: 'worker failed', error: String(err) })}\n`,
    );
    process.exit(1);
  },
);
