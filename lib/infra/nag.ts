import { type Stack, Validations } from 'aws-cdk-lib';
import { ManagedPolicy, Policy } from 'aws-cdk-lib/aws-iam';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { Api } from './api.js';
import { AutoDevFunction } from './autodev-function.js';
import { Dispatcher } from './dispatcher.js';
import { nagFlatten, nagValue } from './nag-value.js';
import { Schedules } from './schedules.js';
import { TaskEvents } from './task-events.js';
import { TaskStore } from './task-store.js';
import { WebDashboard } from './web.js';
import { WorkerRuntime } from './worker-runtime.js';
import { TaskWorkflow } from './workflow.js';

const ack = (scope: IConstruct, id: string, reason: string) =>
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${id}`, reason });

const TABLE_GRANT =
  'Grants from TaskStore.grantReadWrite: the table is encrypted with its customer-managed key, and CDK grants the ' +
  'KMS data-key actions (GenerateDataKey*, ReEncrypt*) and the table indexes (<table>/index/*) that queries need.';

/**
 * The cdk-nag findings AutoDev accepts, each on the construct it concerns and with its reason.
 * Everything else fails synthesis.
 */
export function acknowledgeFindings(stack: Stack): void {
  const store = stack.node.findAll().find((c): c is TaskStore => c instanceof TaskStore);
  const tableGrant = (scope: IConstruct) => {
    const ids = ['IAM5[Action::kms:GenerateDataKey*]', 'IAM5[Action::kms:ReEncrypt*]'];
    if (store) ids.push(`IAM5[Resource::${nagValue(stack, `${store.table.tableArn}/index/*`)}]`);
    for (const id of ids) ack(scope, id, TABLE_GRANT);
  };
  const basicExecutionRole = ManagedPolicy.fromAwsManagedPolicyName(
    'service-role/AWSLambdaBasicExecutionRole',
  ).managedPolicyArn;
  for (const c of stack.node.findAll()) {
    if (c instanceof AutoDevFunction) {
      ack(
        c,
        `IAM4[Policy::${nagValue(c, basicExecutionRole)}]`,
        'The AWS managed basic execution role only lets the function write its own CloudWatch logs.',
      );
      ack(
        c,
        'IAM5[Resource::*]',
        'X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords) has no resource-level permissions.',
      );
      tableGrant(c);
    }
    if (c instanceof WorkerRuntime) {
      for (const id of ['EcrApi', 'EcrDocker']) {
        const endpoint = c.vpc.node.tryFindChild(id);
        if (endpoint) {
          ack(
            endpoint,
            'EC23',
            'The endpoint security group admits HTTPS from the VPC CIDR only (an intrinsic the rule cannot read).',
          );
        }
      }
      tableGrant(c.taskDefinition);
      ack(
        c.providerSecret,
        'SMG4',
        'The secret holds third-party provider API keys and a git token; their owners rotate them at the provider.',
      );
      ack(
        c.taskDefinition,
        'ECS2',
        'The environment carries only names (table name, secret ARN, providers); secret values are read at run time.',
      );
      ack(
        c.taskDefinition,
        'IAM5[Resource::*]',
        'ecr:GetAuthorizationToken, which pulls the worker image, has no resource-level permissions.',
      );
    }
    if (c instanceof TaskWorkflow) {
      ack(
        c.stateMachine,
        'IAM5[Resource::*]',
        'Step Functions needs X-Ray and CloudWatch Logs delivery actions, which have no resource-level permissions.',
      );
      for (const fn of [c.prepareFunction, c.recordFunction]) {
        ack(
          c.stateMachine,
          `IAM5[Resource::${nagValue(stack, `${fn.functionArn}:*`)}]`,
          'Invoking the workflow step functions includes their versions and aliases (<arn>:*).',
        );
      }
    }
    if (c instanceof TaskEvents) {
      ack(
        c.webhooks,
        'SMG4',
        'Slack and Teams incoming-webhook URLs are issued by those services and cannot be rotated by a Lambda; replace them by hand when they leak.',
      );
      ack(
        c.deadLetters,
        'SQS3',
        'This queue is the dead-letter queue of the Task Finished rule; a dead-letter queue needs none of its own.',
      );
    }
    if (c instanceof Dispatcher) {
      ack(
        c.function,
        `IAM5[Resource::${nagValue(c, c.workerTasks)}]`,
        'Cancel stops a worker by the ECS task ARN its attempt recorded; ecs:StopTask is limited to the tasks of the worker cluster.',
      );
    }
    if (c instanceof Api) {
      const healthz = c.httpApi.node.tryFindChild('GET--healthz');
      if (healthz)
        ack(
          healthz,
          'APIG4',
          'The health check is open on purpose: it reveals nothing and load balancers call it.',
        );
      for (const id of ['GET--openapi.json', 'GET--docs']) {
        const route = c.httpApi.node.tryFindChild(id);
        if (route)
          ack(
            route,
            'APIG4',
            "The API's description (OpenAPI document and its page) is public on purpose: it holds no data and clients read it before they have a token.",
          );
      }
      const webhook = c.httpApi.node.tryFindChild('POST--v1--webhooks--github');
      if (webhook)
        ack(
          webhook,
          'APIG4',
          'GitHub sends no token: the handler checks the delivery signature (X-Hub-Signature-256) with the shared secret and refuses replays.',
        );
      if (c.githubWebhookSecret)
        ack(
          c.githubWebhookSecret,
          'SMG4',
          'The webhook secret is shared with GitHub, which cannot follow a rotation; replace it in both places by hand.',
        );
    }
    if (c instanceof WebDashboard) acknowledgeDashboard(stack, c);
    if (c instanceof Schedules) {
      for (const fn of [c.reaper, c.submitter]) {
        if (!fn) continue;
        ack(
          stack,
          `IAM5[Resource::${nagValue(stack, `${fn.functionArn}:*`)}]`,
          "EventBridge Scheduler's target role may invoke the schedule's function, its versions and aliases.",
        );
      }
    }
  }
}

/** The dashboard's distribution, and the function CDK's BucketDeployment copies web/ to S3 with. */
function acknowledgeDashboard(stack: Stack, web: WebDashboard): void {
  const distribution = web.distribution;
  ack(
    distribution,
    'CFR1',
    'No geo restriction: the team signs in from wherever it works; every API call needs a token.',
  );
  ack(
    distribution,
    'CFR2',
    'No WAF web ACL (about $5 a month and more per request): the distribution serves static files and the ' +
      'API behind it refuses any call without a valid token at its JWT authorizer, which is throttled.',
  );
  ack(
    distribution,
    'CFR4',
    'The distribution uses the default *.cloudfront.net certificate, with which CloudFront accepts TLSv1; ' +
      'TLSv1.2_2021 applies once a custom domain with an ACM certificate is added.',
  );
  // the deployment function is a singleton at the stack's top (Custom::CDKBucketDeployment<uuid>)
  const handler = stack.node.children.find(
    (c): c is LambdaFunction =>
      c instanceof LambdaFunction && c.node.id.startsWith('Custom::CDKBucketDeployment'),
  );
  if (!handler) return;
  const why =
    'CDK BucketDeployment copies web/ from the CDK assets bucket to the dashboard bucket and invalidates the distribution';
  ack(handler, 'L1', `${why}; its runtime is chosen by aws-cdk-lib and follows its releases.`);
  ack(
    handler,
    `IAM4[Policy::${nagValue(stack, ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole').managedPolicyArn)}]`,
    `${why}; the AWS managed basic execution role only lets it write its own logs.`,
  );
  const policy = handler.role?.node.tryFindChild('DefaultPolicy');
  if (!(policy instanceof Policy)) return;
  const doc = stack.resolve(policy.document.toJSON()) as {
    Statement: Array<{ Action: string | string[]; Resource: unknown }>;
  };
  const ids = new Set<string>();
  for (const st of doc.Statement) {
    for (const a of [st.Action].flat()) if (a.includes('*')) ids.add(`IAM5[Action::${a}]`);
    const resources = Array.isArray(st.Resource) ? st.Resource : [st.Resource];
    for (const r of resources.map(nagFlatten)) if (r.includes('*')) ids.add(`IAM5[Resource::${r}]`);
  }
  for (const id of ids) {
    ack(
      handler,
      id,
      `${why}: grants from CDK (read the asset objects, write and delete the objects of the dashboard bucket; ` +
        'CloudFront invalidations have no resource-level permissions).',
    );
  }
}
