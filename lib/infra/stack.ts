import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { RecurringTask } from '../aws/recurring.js';
import type { NotificationTarget } from '../worker/notify.js';
import { Api, type ApiTenancySettings } from './api.js';
import { Dispatcher } from './dispatcher.js';
import { encryptLogGroups } from './log-encryption.js';
import { Observability } from './observability.js';
import { Schedules } from './schedules.js';
import { TaskEvents } from './task-events.js';
import { TaskQueue } from './task-queue.js';
import { TaskStore } from './task-store.js';
import { WebDashboard } from './web.js';
import { type WorkerArch, WorkerRuntime } from './worker-runtime.js';
import { TaskWorkflow } from './workflow.js';

export interface AutoDevStackProps extends StackProps {
  /** OIDC issuer URL for the API's JWT authorizer. */
  readonly issuer: string;
  /** Accepted token audiences. */
  readonly audience: string[];
  /** Providers in the worker image. @default 'claude,codex,gemini,opencode' */
  readonly providers?: string;
  /** Keep the tasks table when the stack is deleted. @default true */
  readonly retainData?: boolean;
  /** Tasks submitted on a schedule. @default none */
  readonly recurring?: readonly RecurringTask[];
  /** E-mail address that receives alarm notifications. @default none */
  readonly alarmEmail?: string;
  /** Slack and Teams targets for finished tasks, per tenant (`-c notifications=<file>`). @default none */
  readonly notifications?: readonly NotificationTarget[];
  /** Docker build args of the worker image (CLI versions, INSTALL_CURSOR, AIDER_VERSION). */
  readonly workerBuildArgs?: Record<string, string>;
  /** CPU architecture of the worker (`-c workerArch=arm64`). @default 'x86_64' */
  readonly workerArch?: WorkerArch;
  /** A NAT gateway in each availability zone (`-c natPerAz=true`). @default false: one */
  readonly natPerAz?: boolean;
  /**
   * Rate, burst and concurrency per provider as JSON (`-c providerLimits=limits.json`, core
   * provider-slots.ts). @default 1 start/s, burst 10, 50 at once, for each provider
   */
  readonly providerLimits?: string;
  /**
   * `maxConcurrent` per agent role as JSON (`-c roleLimits='{"ml": {"maxConcurrent": 2}}'`, core
   * role-slots.ts). @default no role limited
   */
  readonly roleLimits?: string;
  /** Without a forge, keep a merge train branch per base (`-c mergeTrain=true`). @default false */
  readonly mergeTrain?: boolean;
  /** Share of `provider: "auto"` choices left to exploration (`-c routingExploration=0.2`). @default 0.1 */
  readonly routingExploration?: number;
  /** Serve `POST /v1/webhooks/github` for this tenant (`-c githubWebhookTenant=acme`). @default not served */
  readonly githubWebhookTenant?: string;
  /** Days finished tasks and their logs are kept (`-c retentionDays=30`; 0: forever). @default 90 */
  readonly retentionDays?: number;
  /** Quotas, claim mapping, clock skew, token lifetime and legal hold of the API (`-c quotas=...`). */
  readonly tenancy?: ApiTenancySettings;
  /** The dashboard signs in as this public client of the issuer (`-c webClientId=...`). @default a pasted token */
  readonly webClientId?: string;
  /** Origins the dashboard may call beside the issuer's (`-c webConnectOrigins=https://a,https://b`). @default none */
  readonly webConnectOrigins?: readonly string[];
}

/** AutoDev on AWS. Only wiring: each concern is a construct in lib/infra. */
export class AutoDevStack extends Stack {
  constructor(scope: Construct, id: string, props: AutoDevStackProps) {
    super(scope, id, props);
    const store = new TaskStore(this, 'TaskStore', {
      removalPolicy: props.retainData === false ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      retentionDays: props.retentionDays,
    });
    encryptLogGroups(this, store.key);
    const queue = new TaskQueue(this, 'TaskQueue');
    const runtime = new WorkerRuntime(this, 'WorkerRuntime', {
      store,
      providers: props.providers,
      buildArgs: props.workerBuildArgs,
      arch: props.workerArch,
      natPerAz: props.natPerAz,
      mergeTrain: props.mergeTrain,
    });
    const workflow = new TaskWorkflow(this, 'Workflow', {
      store,
      runtime,
      providerLimits: props.providerLimits,
      roleLimits: props.roleLimits,
      routingExploration: props.routingExploration,
    });
    const dispatcher = new Dispatcher(this, 'Dispatcher', { store, queue, workflow, runtime });
    // the record step announces the tasks a task's end released (its dependents, an epic's sub-tasks)
    queue.grantSend(workflow.recordFunction);
    new TaskEvents(this, 'TaskEvents', {
      publisher: workflow.recordFunction,
      notifications: props.notifications,
    });
    const api = new Api(this, 'Api', {
      store,
      queue,
      issuer: props.issuer,
      audience: props.audience,
      providers: runtime.providers,
      githubWebhookTenant: props.githubWebhookTenant,
      tenancy: props.tenancy,
    });
    const schedules = new Schedules(this, 'Schedules', {
      store,
      queue,
      recurring: props.recurring,
      providers: runtime.providers,
    });
    schedules.grantManageApiSchedules(api.function);
    // each reaper pass also wakes executions parked on providers with free slots
    workflow.grantResumeParked(schedules.reaper);
    new Observability(this, 'Observability', {
      alarmEmail: props.alarmEmail,
      api,
      queue,
      workflow,
      functions: [
        api.function,
        dispatcher.function,
        workflow.prepareFunction,
        workflow.recordFunction,
        schedules.reaper,
        schedules.submitter,
      ],
    });
    const web = new WebDashboard(this, 'Web', {
      httpApi: api.httpApi,
      issuer: props.issuer,
      clientId: props.webClientId,
      connectOrigins: props.webConnectOrigins,
    });
    new CfnOutput(this, 'DashboardUrl', {
      value: web.url,
      description: 'The web dashboard (the redirect URI of its sign-in)',
    });
    new CfnOutput(this, 'ApiUrl', { value: api.url, description: 'Base URL of the task API' });
    new CfnOutput(this, 'ProviderSecretArn', {
      value: runtime.providerSecret.secretArn,
      description: 'Put provider keys here (JSON object)',
    });
    new CfnOutput(this, 'TasksTableName', { value: store.table.tableName });
    if (api.githubWebhookSecret) {
      new CfnOutput(this, 'GitHubWebhookSecretArn', {
        value: api.githubWebhookSecret.secretArn,
        description: 'The shared secret to paste into the GitHub webhook',
      });
    }
    new CfnOutput(this, 'StateMachineArn', { value: workflow.stateMachine.stateMachineArn });
  }
}
