import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { apiSettingsFromEnv } from '../aws/api-settings.js';
import { AutoDevFunction } from './autodev-function.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskStore } from './task-store.js';

/** Routes answered without a token: the health check and the API's description. */
export const OPEN_GET_PATHS = ['/healthz', '/openapi.json', '/docs'] as const;

export interface ApiProps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  /** The OIDC issuer URL whose tokens the gateway accepts (e.g. a Cognito user pool or Auth0 tenant). */
  readonly issuer: string;
  /** Accepted `aud` values. */
  readonly audience: string[];
  /** Providers the worker image carries, for submission checks. */
  readonly providers: string;
  /** Steady-state requests per second across the API. @default 50 */
  readonly rateLimit?: number;
  /** @default 100 */
  readonly burstLimit?: number;
  /**
   * Serve `POST /v1/webhooks/github` for this tenant: its own route without the JWT authorizer (the
   * handler checks the delivery's signature with a secret the stack generates). @default not served
   */
  readonly githubWebhookTenant?: string;
  /** Tenancy settings of the API function, as the local platform's variables of the same names. @default none set */
  readonly tenancy?: ApiTenancySettings;
}

/**
 * What the API function enforces beyond the gateway's JWT check; each is set as the variable of the
 * same name the local platform reads (lib/aws/api-settings.ts reads them with the same code).
 */
export interface ApiTenancySettings {
  /** `AUTODEV_QUOTAS`: JSON `{"*": {"tasksPerHour": 500}, "acme": {"activeTasks": 20}}`. @default unlimited */
  readonly quotas?: string;
  /** `AUTODEV_OIDC_TENANT_CLAIM`: the claim(s) holding the tenant. @default tenant, custom:tenant */
  readonly tenantClaim?: string;
  /** `AUTODEV_OIDC_ROLE_CLAIM`: e.g. `cognito:groups`, `roles`, `groups`. @default role, custom:role */
  readonly roleClaim?: string;
  /** `AUTODEV_OIDC_ROLE_MAP`: `group=role` pairs. @default AutoDev's role names stand for themselves */
  readonly roleMap?: string;
  /** `AUTODEV_CLOCK_SKEW_SECONDS`. @default 30 */
  readonly clockSkewSeconds?: number;
  /** `AUTODEV_MAX_TOKEN_TTL`, e.g. `12h`. @default 24h */
  readonly maxTokenTtl?: string;
  /** `AUTODEV_AUDIT_HOLD_DAYS`: audit entries younger than this survive an erasure. @default 365 */
  readonly auditHoldDays?: number;
}

/** The settings as the function's environment (only those set). */
function tenancyEnvironment(t: ApiTenancySettings = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    AUTODEV_QUOTAS: t.quotas,
    AUTODEV_OIDC_TENANT_CLAIM: t.tenantClaim,
    AUTODEV_OIDC_ROLE_CLAIM: t.roleClaim,
    AUTODEV_OIDC_ROLE_MAP: t.roleMap,
    AUTODEV_CLOCK_SKEW_SECONDS: t.clockSkewSeconds?.toString(),
    AUTODEV_MAX_TOKEN_TTL: t.maxTokenTtl,
    AUTODEV_AUDIT_HOLD_DAYS: t.auditHoldDays?.toString(),
  };
  const set = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  // checked at synth with the code the function runs: a bad setting fails the synth, not a cold start
  apiSettingsFromEnv(set);
  return set;
}

/**
 * The task API: an HTTP API whose JWT authorizer checks issuer, audience, signature and expiry,
 * in front of the shared API handler (which checks tenant and role again). Access logs and
 * throttling on the default stage; /healthz, /openapi.json and /docs are open.
 */
export class Api extends Construct {
  public readonly httpApi: apigw.HttpApi;
  public readonly function: AutoDevFunction;
  public readonly accessLogs: logs.LogGroup;
  /** The GitHub webhook's shared secret (generated; paste it into the webhook's settings). */
  public readonly githubWebhookSecret?: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.function = new AutoDevFunction(this, 'Function', {
      entry: 'api',
      description: 'AutoDev task API',
      environment: { AUTODEV_PROVIDERS: props.providers, ...tenancyEnvironment(props.tenancy) },
    });
    props.store.grantReadWrite(this.function);
    props.queue.grantSend(this.function);

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const integration = new HttpLambdaIntegration('Handler', this.function);
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'AutoDev task API',
      createDefaultStage: false,
      defaultAuthorizer: new HttpJwtAuthorizer('Jwt', props.issuer, { jwtAudience: props.audience }),
    });
    this.httpApi.addStage('Stage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 50, burstLimit: props.burstLimit ?? 100 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            time: '$context.requestTime',
            method: '$context.httpMethod',
            path: '$context.path',
            status: '$context.status',
            latencyMs: '$context.responseLatency',
            subject: '$context.authorizer.claims.sub',
            error: '$context.authorizer.error',
          }),
        ),
      },
    });
    this.httpApi.addRoutes({ path: '/v1/{proxy+}', methods: [apigw.HttpMethod.ANY], integration });
    if (props.githubWebhookTenant) {
      this.githubWebhookSecret = new secretsmanager.Secret(this, 'GitHubWebhookSecret', {
        description: 'AutoDev: the shared secret of the GitHub webhook (POST /v1/webhooks/github)',
        generateSecretString: { passwordLength: 40, excludePunctuation: true },
      });
      this.githubWebhookSecret.grantRead(this.function);
      this.function.addEnvironment('GITHUB_WEBHOOK_SECRET_ARN', this.githubWebhookSecret.secretArn);
      this.function.addEnvironment('GITHUB_WEBHOOK_TENANT', props.githubWebhookTenant);
      // GitHub sends no token: the handler checks X-Hub-Signature-256 and refuses replays
      this.httpApi.addRoutes({
        path: '/v1/webhooks/github',
        methods: [apigw.HttpMethod.POST],
        integration,
        authorizer: new apigw.HttpNoneAuthorizer(),
      });
    }
    // open: the health check, and the API's description (GET /openapi.json, its page GET /docs)
    for (const path of OPEN_GET_PATHS) {
      this.httpApi.addRoutes({
        path,
        methods: [apigw.HttpMethod.GET],
        integration,
        authorizer: new apigw.HttpNoneAuthorizer(),
      });
    }
  }

  get url(): string {
    return this.httpApi.apiEndpoint;
  }
}
