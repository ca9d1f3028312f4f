import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { TASK_TABLE } from '../../lib/aws/task-table.js';
import { AUDIENCE, ISSUER, synthStack } from './synth.js';

let template: Template;
beforeAll(() => {
  ({ template } = synthStack());
});

const RECURRING_TASK = { repo: 'https://github.com/acme/app.git', prompt: 'Update dependencies' };
let configured: (ReturnType<typeof synthStack> & { outdir: string }) | undefined;

/** The stack with every optional setting on, synthesized once (with cdk-nag) for the tests that need it. */
function configuredStack(): ReturnType<typeof synthStack> & { outdir: string } {
  if (configured) return configured;
  const file = join(mkdtempSync(join(tmpdir(), 'autodev-recurring-')), 'recurring.json');
  writeFileSync(
    file,
    JSON.stringify([
      {
        name: 'nightly',
        schedule: 'cron(0 3 * * ? *)',
        timezone: 'Europe/Berlin',
        tenant: 'acme',
        task: RECURRING_TASK,
      },
    ]),
  );
  const synthesized = synthStack({
    retainData: 'false',
    recurring: file,
    alarmEmail: 'ops@example.com',
    workerBuildArgs: 'INSTALL_CURSOR=1,AIDER_VERSION=0.86.1',
    githubWebhookTenant: 'acme',
  });
  configured = { ...synthesized, outdir: synthesized.synth() };
  return configured;
}

/** The actions of every IAM policy statement attached to a role whose logical id starts with `prefix`. */
function actionsOf(prefix: string): string[] {
  const policies = template.findResources('AWS::IAM::Policy');
  const actions = new Set<string>();
  for (const p of Object.values(policies)) {
    const roles = JSON.stringify(p.Properties.Roles);
    if (!roles.includes(`"${prefix}`)) continue;
    for (const s of p.Properties.PolicyDocument.Statement as { Action: string | string[] }[]) {
      for (const a of [s.Action].flat()) actions.add(a);
    }
  }
  return [...actions].sort();
}

/** The resources of the statements that grant `action` to the role of the function named `prefix…`. */
function resourcesOf(prefix: string, action: string): unknown[] {
  const out: unknown[] = [];
  for (const p of Object.values(template.findResources('AWS::IAM::Policy'))) {
    if (!JSON.stringify(p.Properties.Roles).includes(`"${prefix}`)) continue;
    for (const s of p.Properties.PolicyDocument.Statement as {
      Action: string | string[];
      Resource: unknown;
    }[]) {
      if ([s.Action].flat().includes(action)) out.push(...[s.Resource].flat());
    }
  }
  return out;
}

describe('TaskStore', () => {
  it('is one on-demand table with the schema of lib/aws/task-table.ts, PITR, a customer-managed key and TTL', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: TASK_TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TASK_TABLE.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({ IndexName: TASK_TABLE.byTenant.indexName, Projection: { ProjectionType: 'ALL' } }),
        Match.objectLike({ IndexName: TASK_TABLE.byStatus.indexName }),
      ]),
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
      TimeToLiveSpecification: { AttributeName: TASK_TABLE.ttlAttribute, Enabled: true },
      DeletionProtectionEnabled: true,
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });

  it('deletes the table with the stack only when retainData=false', () => {
    const { template: t } = configuredStack();
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });
});

describe('TaskQueue', () => {
  it('is a KMS-encrypted FIFO queue with explicit deduplication and a FIFO dead-letter queue', () => {
    // the task queue and its dead-letter queue, and the notifier's dead-letter queue (TaskEvents)
    template.resourceCountIs('AWS::SQS::Queue', 3);
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      ContentBasedDeduplication: false,
      KmsMasterKeyId: Match.anyValue(),
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('feeds the dispatcher with partial batch responses', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });
});

describe('Lambda functions', () => {
  it('are arm64, traced, on Node 24, with Powertools settings', () => {
    const fns = template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'autodev' } } },
    });
    expect(Object.keys(fns)).toHaveLength(7);
    for (const fn of Object.values(fns)) {
      expect(fn.Properties).toMatchObject({
        Architectures: ['arm64'],
        Runtime: 'nodejs24.x',
        TracingConfig: { Mode: 'Active' },
        Handler: 'index.handler',
      });
    }
  });

  it('give each function only the actions it uses', () => {
    const table = [
      'dynamodb:BatchWriteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ];
    expect(actionsOf('ApiFunction')).toEqual(expect.arrayContaining([...table, 'sqs:SendMessage']));
    expect(actionsOf('ApiFunction')).not.toContain('states:StartExecution');
    expect(actionsOf('DispatcherFunction')).toEqual(
      expect.arrayContaining([...table, 'states:StartExecution', 'ecs:StopTask']),
    );
    expect(actionsOf('DispatcherFunction')).not.toContain('ecs:ListTasks');
    expect(actionsOf('DispatcherFunction')).not.toContain('sqs:SendMessage');
    expect(actionsOf('SchedulesReaper')).toEqual(
      expect.arrayContaining([...table, 'sqs:SendMessage', 'states:SendTaskSuccess']),
    );
    expect(actionsOf('WorkflowRecord')).toContain('states:SendTaskSuccess');
    // it announces the tasks a task's end released (dependents, an epic's sub-tasks)
    expect(actionsOf('WorkflowRecord')).toContain('sqs:SendMessage');
    expect(actionsOf('WorkflowRecord')).not.toContain('states:StartExecution');
  });

  it('lets the workflow steps resume parked executions and start continuations of their own state machine only', () => {
    const own = JSON.stringify(resourcesOf('WorkflowPrepare', 'states:StartExecution'));
    expect(own).toContain(':stateMachine:AutoDev-tasks');
    for (const fn of ['WorkflowPrepare', 'WorkflowRecord', 'SchedulesReaper']) {
      const resources = resourcesOf(fn, 'states:SendTaskSuccess');
      expect(resources).toHaveLength(1);
      expect(JSON.stringify(resources)).toContain(':stateMachine:AutoDev-tasks');
    }
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: 'AutoDev-tasks' });
  });

  it('grants the task-token callbacks (states:SendTask*) on the workflow state machine only, never on *', () => {
    const grants: { action: string; resource: string }[] = [];
    for (const p of Object.values(template.findResources('AWS::IAM::Policy'))) {
      for (const st of p.Properties.PolicyDocument.Statement as {
        Action: string | string[];
        Resource: unknown;
      }[]) {
        for (const action of [st.Action].flat().filter((a) => /^states:SendTask|^states:\*$|^\*$/.test(a)))
          for (const r of [st.Resource].flat()) grants.push({ action, resource: JSON.stringify(r) });
      }
    }
    // Prepare, Record and the reaper resume parked executions; nothing sends failures or heartbeats
    expect([...new Set(grants.map((g) => g.action))]).toEqual(['states:SendTaskSuccess']);
    expect(grants).toHaveLength(3);
    for (const g of grants) {
      expect(g.resource).not.toBe('"*"');
      expect(g.resource).toMatch(/:stateMachine:AutoDev-tasks"/);
      expect(g.resource).not.toContain('*');
    }
  });

  it('limits the dispatcher’s ECS actions to stopping tasks of the worker cluster', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'ecs:StopTask',
            Resource: {
              'Fn::Join': [
                '',
                Match.arrayWith([
                  Match.stringLikeRegexp(':task/$'),
                  { Ref: Match.stringLikeRegexp('^WorkerRuntimeCluster') },
                  '/*',
                ]),
              ],
            },
            Condition: {
              ArnEquals: {
                'ecs:cluster': { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkerRuntimeCluster'), 'Arn'] },
              },
            },
          }),
        ]),
      },
    });
  });
});

describe('Api', () => {
  it('checks JWTs from the configured issuer and audience at the gateway', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: ISSUER, Audience: [AUDIENCE] },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'ANY /v1/{proxy+}',
      AuthorizationType: 'JWT',
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /healthz',
      AuthorizationType: 'NONE',
    });
  });

  it('logs access and throttles on its stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('serves the GitHub webhook, when asked, on its own route without the JWT authorizer', () => {
    // Arrange: the default stack and one with -c githubWebhookTenant=acme (synthesized with cdk-nag)
    const { template: t, stack } = configuredStack();
    // Assert
    template.resourcePropertiesCountIs(
      'AWS::ApiGatewayV2::Route',
      { RouteKey: 'POST /v1/webhooks/github' },
      0,
    );
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'POST /v1/webhooks/github',
      AuthorizationType: 'NONE',
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'ANY /v1/{proxy+}',
      AuthorizationType: 'JWT',
    });
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { PasswordLength: 40, ExcludePunctuation: true },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          GITHUB_WEBHOOK_TENANT: 'acme',
          GITHUB_WEBHOOK_SECRET_ARN: Match.anyValue(),
        }),
      },
    });
    expect(stack.node.tryFindChild('GitHubWebhookSecretArn')).toBeDefined();
  });

  it('refuses to synthesize without an https issuer', () => {
    expect(() => synthStack({ issuer: 'http://insecure.example.com' })).toThrow(/issuer/);
  });
});

describe('WorkerRuntime', () => {
  it('runs a root supervisor (agents run as another user) with a read-only root file system and a writable workspace volume', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      Cpu: '1024',
      Memory: '2048',
      EphemeralStorage: { SizeInGiB: 50 },
      Volumes: [{ Name: 'workspace' }, { Name: 'tmp' }],
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'worker',
          User: '0',
          ReadonlyRootFilesystem: true,
          MountPoints: [
            { SourceVolume: 'workspace', ContainerPath: '/workspace', ReadOnly: false },
            { SourceVolume: 'tmp', ContainerPath: '/tmp', ReadOnly: false },
          ],
          LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
        }),
      ],
    });
  });

  it('gives the worker the secret by ARN only, never a secret value', () => {
    const defs = template.findResources('AWS::ECS::TaskDefinition');
    const container = Object.values(defs)[0]?.Properties.ContainerDefinitions[0];
    const names = (container.Environment as { Name: string }[]).map((e) => e.Name).sort();
    expect(names).toEqual([
      'AUTODEV_PROVIDERS',
      'AUTODEV_RETENTION_DAYS',
      'AUTODEV_WORKSPACES',
      'PROVIDER_SECRET_ARN',
      'TASKS_TABLE_NAME',
    ]);
    expect(container.Secrets).toBeUndefined();
    expect(actionsOf('WorkerRuntimeWorkerTaskRole')).toEqual(
      expect.arrayContaining(['secretsmanager:GetSecretValue', 'dynamodb:PutItem']),
    );
  });

  it('lets the worker get and write its task, log, provider health and spend items by key, read role settings, and nothing else of the table', () => {
    // Act
    const dynamo = actionsOf('WorkerRuntimeWorkerTaskRole').filter((a) => a.startsWith('dynamodb:'));
    // Assert: no listing (Query, Scan), no deleting, no index
    expect(dynamo).toEqual([
      'dynamodb:BatchWriteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^WorkerRuntimeWorkerTaskRole') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: dynamo,
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TaskStoreTable'), 'Arn'] },
            // its own task and logs, provider health (rate limits seen) and tenants' spend counters
            Condition: {
              'ForAllValues:StringLike': {
                'dynamodb:LeadingKeys': ['TASK#*', 'LOG#*', 'PROVIDERS', 'SPEND#*'],
              },
            },
          }),
          // role settings (full-access mode): read only, an admin changes them through the API
          Match.objectLike({
            Action: 'dynamodb:GetItem',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TaskStoreTable'), 'Arn'] },
            Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ROLESET#*'] } },
          }),
        ]),
      },
    });
  });

  it('builds the worker image with the build args from -c workerBuildArgs', () => {
    const { stack, outdir } = configuredStack();
    const manifest = JSON.parse(readFileSync(join(outdir, `${stack.artifactId}.assets.json`), 'utf8'));
    const images = Object.values(manifest.dockerImages) as {
      source: { dockerBuildArgs?: Record<string, string> };
    }[];
    expect(images.map((i) => i.source.dockerBuildArgs)).toEqual([
      { INSTALL_CURSOR: '1', AIDER_VERSION: '0.86.1' },
    ]);
    expect(() => synthStack({ workerBuildArgs: 'lowercase=1' })).toThrow(/NAME=value/);
  });

  it('keeps workers in private subnets with flow logs on and image pulls off the NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 4);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({}),
    });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
    });
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });
});

describe('TaskWorkflow', () => {
  it('is a Standard state machine with full logging and X-Ray', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
    });
  });

  it('may run and stop the worker task and pass its roles, nothing more on ECS', () => {
    const actions = actionsOf('WorkflowStateMachineRole');
    expect(actions).toEqual(
      expect.arrayContaining(['ecs:RunTask', 'ecs:StopTask', 'ecs:DescribeTasks', 'iam:PassRole']),
    );
    expect(actions.filter((a) => a.startsWith('ecs:')).sort()).toEqual([
      'ecs:DescribeTasks',
      'ecs:RunTask',
      'ecs:StopTask',
    ]);
  });
});

describe('Schedules and Observability', () => {
  it('runs the reaper every five minutes through EventBridge Scheduler', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Target: Match.objectLike({ Arn: Match.anyValue(), RoleArn: Match.anyValue() }),
    });
  });

  it('turns each recurring task into a schedule that passes its scheduled time for idempotent submission', () => {
    const { template: t } = configuredStack();
    const task = RECURRING_TASK;
    // Assert
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      Target: Match.objectLike({
        Input: JSON.stringify({
          name: 'nightly',
          tenant: 'acme',
          task,
          scheduledTime: '<aws.scheduler.scheduled-time>',
        }),
        RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 3 }),
      }),
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('recurring tasks'),
    });
  });

  it('lets the API manage the schedules of its own group only, and pass the scheduler role only', () => {
    // Assert: the API's actions on schedules, limited to the API group
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: [
              'scheduler:CreateSchedule',
              'scheduler:DeleteSchedule',
              'scheduler:GetSchedule',
              'scheduler:UpdateSchedule',
            ],
            Effect: 'Allow',
            Resource: {
              'Fn::Join': [
                '',
                Match.arrayWith([
                  Match.stringLikeRegexp(':schedule/AutoDev-Schedules-ApiScheduleGroup-[0-9A-F]+/\\*$'),
                ]),
              ],
            },
          }),
          Match.objectLike({
            Action: 'iam:PassRole',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesSchedulerRole'), 'Arn'] },
          }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp('^ApiFunctionServiceRole') }],
    });
    expect(
      actionsOf('ApiFunction').filter((a) => a.startsWith('scheduler:') || a.startsWith('iam:')),
    ).toEqual([
      'iam:PassRole',
      'scheduler:CreateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetSchedule',
      'scheduler:UpdateSchedule',
    ]);
    // the scheduler role: assumed by EventBridge Scheduler of this account, may invoke the submitter
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ],
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: 'lambda:InvokeFunction',
            Resource: Match.arrayWith([
              { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesSubmitter'), 'Arn'] },
            ]),
          }),
        ],
      },
      Roles: [{ Ref: Match.stringLikeRegexp('^SchedulesSchedulerRole') }],
    });
    template.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          SCHEDULE_GROUP_NAME: Match.anyValue(),
          SCHEDULER_ROLE_ARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesSchedulerRole'), 'Arn'] },
          SCHEDULE_TARGET_ARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SchedulesSubmitter'), 'Arn'] },
        }),
      },
    });
  });

  it('sends alarms to an encrypted SNS topic when -c alarmEmail is given', () => {
    const { template: t } = configuredStack();
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const a of alarms) expect(a.Properties.AlarmActions).toHaveLength(1);
  });

  it('has a dashboard and alarms for dead letters, backlog, workflow failures, API 5xx and each function', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4 + 6);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });
});

describe('tenancy settings from CDK context', () => {
  it('sets quotas, claim mapping, clock skew, token lifetime and legal hold on the API function, and the retention on every writer', () => {
    // Arrange
    const { template } = synthStack({
      quotas: '{"*":{"activeTasks":20}}',
      tenantClaim: 'org',
      roleClaim: 'cognito:groups',
      roleMap: 'autodev-admins=admin',
      clockSkewSeconds: '10',
      maxTokenTtl: '12h',
      auditHoldDays: '400',
      retentionDays: '30',
    });
    // Assert
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'AutoDev task API',
      Environment: {
        Variables: Match.objectLike({
          AUTODEV_QUOTAS: '{"*":{"activeTasks":20}}',
          AUTODEV_OIDC_TENANT_CLAIM: 'org',
          AUTODEV_OIDC_ROLE_CLAIM: 'cognito:groups',
          AUTODEV_OIDC_ROLE_MAP: 'autodev-admins=admin',
          AUTODEV_CLOCK_SKEW_SECONDS: '10',
          AUTODEV_MAX_TOKEN_TTL: '12h',
          AUTODEV_AUDIT_HOLD_DAYS: '400',
          AUTODEV_RETENTION_DAYS: '30',
        }),
      },
    });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([{ Name: 'AUTODEV_RETENTION_DAYS', Value: '30' }]),
        }),
      ],
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    });
  });

  it('refuses a bad setting at synth, naming it', () => {
    expect(() => synthStack({ quotas: '{"acme":{"tasksPerHour":0}}' })).toThrow(/AUTODEV_QUOTAS/);
    expect(() => synthStack({ roleMap: 'admins=root' })).toThrow(/AUTODEV_OIDC_ROLE_MAP/);
    expect(() => synthStack({ retentionDays: 'soon' })).toThrow(/retentionDays/);
  });
});
