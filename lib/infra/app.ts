import { readFileSync } from 'node:fs';
import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseRecurringTasks } from '../aws/recurring.js';
import { ConfigError } from '../core/errors.js';
import { parseProviderLimits } from '../core/provider-slots.js';
import { withRoleLimits } from '../core/role-slots.js';
import { BUILT_IN_ROLES } from '../core/roles.js';
import { NotificationConfig } from '../worker/notify.js';
import { acknowledgeFindings } from './nag.js';
import { AutoDevStack } from './stack.js';
import { WORKER_ARCHS, type WorkerArch } from './worker-runtime.js';

/** `-c workerBuildArgs=INSTALL_CURSOR=1,AIDER_VERSION=0.86.1` as Docker build args. */
function parseBuildArgs(value: string | undefined): Record<string, string> | undefined {
  if (!value) return undefined;
  const args: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const m = pair.trim().match(/^([A-Z][A-Z0-9_]*)=(.*)$/);
    if (!m) throw new ConfigError(`workerBuildArgs: "${pair}" is not NAME=value.`);
    args[m[1] as string] = m[2] as string;
  }
  return args;
}

/** `-c workerArch=arm64`: one of WORKER_ARCHS. */
function parseWorkerArch(value: string | undefined): WorkerArch | undefined {
  if (value === undefined) return undefined;
  const arch = WORKER_ARCHS.find((a) => a === value);
  if (!arch) throw new ConfigError(`workerArch: "${value}" is not one of ${WORKER_ARCHS.join(', ')}.`);
  return arch;
}

/** `-c natPerAz=true|false`. */
function parseBoolean(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false')
    throw new ConfigError(`${name}: "${value}" is not true or false.`);
  return value === 'true';
}

/** `-c routingExploration=0.2`: a share from 0 to 1, or undefined when not given. */
function parseShare(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new ConfigError(`${name}: "${value}" is not a number from 0 to 1.`);
  return n;
}

/** `-c retentionDays=30`, `-c clockSkewSeconds=10`: a number, or undefined when not given. */
function parseNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new ConfigError(`${name}: "${value}" is not a number of 0 or more.`);
  return n;
}

/** `-c providerLimits=<JSON or file>`: rate, burst and concurrency per provider, checked at synth. */
function readProviderLimits(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().startsWith('{') ? value : readFileSync(value, 'utf8');
  return JSON.stringify(
    parseProviderLimits(text, `providerLimits (${value.trim().startsWith('{') ? 'JSON' : value})`),
  );
}

/** `-c roleLimits=<JSON or file>`: `maxConcurrent` per agent role, checked at synth. */
function readRoleLimits(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const inline = value.trim().startsWith('{');
  const text = inline ? value : readFileSync(value, 'utf8');
  const roles = withRoleLimits(BUILT_IN_ROLES, text, `roleLimits (${inline ? 'JSON' : value})`);
  return JSON.stringify(
    Object.fromEntries(
      Object.values(roles)
        .filter((r) => r.maxConcurrent !== undefined)
        .map((r) => [r.name, { maxConcurrent: r.maxConcurrent }]),
    ),
  );
}

/**
 * The CDK app: the AutoDev stack with cdk-nag's AWS Solutions checks always on. Settings come from
 * context (`-c issuer=... -c audience=a,b -c providers=claude,codex -c retainData=false -c stackName=...
 * -c recurring=recurring.json -c alarmEmail=ops@example.com -c workerBuildArgs=INSTALL_CURSOR=1,AIDER_VERSION=...
 * -c workerArch=arm64 -c natPerAz=true -c githubWebhookTenant=acme -c retentionDays=90 -c quotas='{"*":{"activeTasks":20}}'
 * -c tenantClaim=org -c roleClaim=cognito:groups -c roleMap=admins=admin -c clockSkewSeconds=30
 * -c maxTokenTtl=12h -c auditHoldDays=365 -c providerLimits=limits.json -c roleLimits='{"ml":{"maxConcurrent":2}}'
 * -c mergeTrain=true -c routingExploration=0.2
 * -c webClientId=<public client id> -c webConnectOrigins=https://login.example.com`;
 * recurring tasks: lib/aws/recurring.ts). The environment comes from `CDK_DEFAULT_ACCOUNT` and
 * `CDK_DEFAULT_REGION` in `processEnv`, as the CDK CLI sets them.
 */
export function buildApp(
  appProps: AppProps = {},
  processEnv: Readonly<Record<string, string | undefined>> = process.env,
): { app: App; stack: AutoDevStack } {
  const app = new App(appProps);
  const ctx = (key: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined || value === null ? undefined : String(value);
  };
  const issuer = ctx('issuer');
  const audience = ctx('audience');
  if (!issuer?.startsWith('https://') || !audience) {
    throw new ConfigError(
      'Set the OIDC issuer and audience of your identity provider: npx cdk deploy -c issuer=https://... -c audience=<client id>',
    );
  }
  const audiences = audience.split(',').map((a) => a.trim());
  const webClientId = ctx('webClientId')?.trim() || undefined;
  if (webClientId && !audiences.includes(webClientId)) {
    throw new ConfigError(
      'webClientId: must also be one of -c audience (the dashboard sends the ID token, whose audience is its client id).',
    );
  }
  const recurringFile = ctx('recurring');
  const recurring = recurringFile
    ? parseRecurringTasks(JSON.parse(readFileSync(recurringFile, 'utf8')), recurringFile)
    : undefined;
  const notificationsFile = ctx('notifications');
  const stack = new AutoDevStack(app, ctx('stackName') ?? 'AutoDev', {
    description: 'AutoDev: AI coding agents run headless on development tasks',
    issuer,
    audience: audiences,
    webClientId,
    webConnectOrigins: ctx('webConnectOrigins')
      ?.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    providers: ctx('providers'),
    retainData: ctx('retainData') !== 'false',
    recurring,
    alarmEmail: ctx('alarmEmail'),
    workerBuildArgs: parseBuildArgs(ctx('workerBuildArgs')),
    workerArch: parseWorkerArch(ctx('workerArch')),
    natPerAz: parseBoolean('natPerAz', ctx('natPerAz')),
    mergeTrain: parseBoolean('mergeTrain', ctx('mergeTrain')),
    routingExploration: parseShare('routingExploration', ctx('routingExploration')),
    githubWebhookTenant: ctx('githubWebhookTenant'),
    retentionDays: parseNumber('retentionDays', ctx('retentionDays')),
    tenancy: {
      // a string (`-c quotas='{...}'`) or, in cdk.json, an object
      quotas: ((q: unknown) => (q && typeof q === 'object' ? JSON.stringify(q) : ctx('quotas')))(
        app.node.tryGetContext('quotas'),
      ),
      tenantClaim: ctx('tenantClaim'),
      roleClaim: ctx('roleClaim'),
      roleMap: ctx('roleMap'),
      clockSkewSeconds: parseNumber('clockSkewSeconds', ctx('clockSkewSeconds')),
      maxTokenTtl: ctx('maxTokenTtl'),
      auditHoldDays: parseNumber('auditHoldDays', ctx('auditHoldDays')),
    },
    providerLimits: readProviderLimits(ctx('providerLimits')),
    // a string (`-c roleLimits='{...}'` or a file name) or, in cdk.json, an object
    roleLimits: readRoleLimits(
      ((r: unknown) => (r && typeof r === 'object' ? JSON.stringify(r) : ctx('roleLimits')))(
        app.node.tryGetContext('roleLimits'),
      ),
    ),
    notifications: notificationsFile
      ? NotificationConfig.parse(JSON.parse(readFileSync(notificationsFile, 'utf8')))
      : undefined,
    // the CDK CLI always sets a region (AWS_REGION, else us-east-1) and an account when it has
    // credentials; without them (a plain `node` run) the stack is environment-agnostic
    env: { account: processEnv.CDK_DEFAULT_ACCOUNT, region: processEnv.CDK_DEFAULT_REGION },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  acknowledgeFindings(stack);
  return { app, stack };
}
