import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AutoDevFunction } from './autodev-function.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskStore } from './task-store.js';

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
}

/**
 * The task API: an HTTP API whose JWT authorizer checks issuer, audience, signature and expiry,
 * in front of the shared API handler (which checks tenant and role again). Access logs and
 * throttling on the default stage; /healthz is open.
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
      environment: { AUTODEV_PROVIDERS: props.providers },
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
    this.httpApi.addRoutes({
      path: '/healthz',
      methods: [apigw.HttpMethod.GET],
      integration,
      authorizer: new apigw.HttpNoneAuthorizer(),
    });
  }

  get url(): string {
    return this.httpApi.apiEndpoint;
  }
}
