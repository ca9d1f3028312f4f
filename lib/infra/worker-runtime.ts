import { join } from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { repoRoot } from './paths.js';
import type { TaskStore } from './task-store.js';

export interface WorkerRuntimeProps {
  readonly store: TaskStore;
  /** Providers the image carries (AUTODEV_PROVIDERS). @default 'claude,codex,gemini,opencode' */
  readonly providers?: string;
  /** Default task size; each attempt overrides it with the task's or role's limits. @default 1 vCPU, 2048 MiB */
  readonly cpu?: number;
  readonly memoryLimitMiB?: number;
  /** Disk for clones and agent homes. @default 50 GiB */
  readonly ephemeralStorageGiB?: number;
  /** @default 2 */
  readonly maxAzs?: number;
  /**
   * One NAT gateway in each availability zone (`-c natPerAz=true`), so that workers in one zone
   * keep their outbound path when another zone fails. @default false (one NAT gateway: agents
   * only make outbound calls)
   */
  readonly natPerAz?: boolean;
  /**
   * VPC endpoints for image pulls and the table (S3 and DynamoDB gateways, ECR interfaces), so the
   * worker image's layers do not pass through the NAT gateway on every task. @default true
   */
  readonly privateEndpoints?: boolean;
  /** CPU architecture of the worker tasks and image (`-c workerArch=arm64`). @default 'x86_64' */
  readonly arch?: WorkerArch;
  /** Docker build args for the worker image (CLI versions, INSTALL_CURSOR, AIDER_VERSION). */
  readonly buildArgs?: Record<string, string>;
  /**
   * Without a forge, the worker keeps a merge train branch per base (`-c mergeTrain=true`,
   * AUTODEV_MERGE_TRAIN=on; core merge-train.ts). With a forge the train always runs. @default false
   */
  readonly mergeTrain?: boolean;
}

/** The CPU architectures the worker runs on. */
export const WORKER_ARCHS = ['x86_64', 'arm64'] as const;
export type WorkerArch = (typeof WORKER_ARCHS)[number];

/** The name of the worker container in the task definition (the state machine overrides it). */
export const WORKER_CONTAINER = 'worker';

/**
 * Where agents run: a VPC with private subnets (egress through NAT, flow logs on), an ECS cluster,
 * and the Fargate worker task definition built from containers/worker: non-root, read-only root
 * file system, a writable /workspace volume, provider keys read from Secrets Manager at run time.
 */
export class WorkerRuntime extends Construct {
  public readonly vpc: ec2.Vpc;
  public readonly cluster: ecs.Cluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly providerSecret: secretsmanager.Secret;
  public readonly providers: string;

  constructor(scope: Construct, id: string, props: WorkerRuntimeProps) {
    super(scope, id);
    this.providers = props.providers ?? 'claude,codex,gemini,opencode';
    const maxAzs = props.maxAzs ?? 2;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs,
      natGateways: props.natPerAz ? maxAzs : 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'workers', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new logs.LogGroup(this, 'FlowLogs', {
              retention: logs.RetentionDays.ONE_MONTH,
              removalPolicy: RemovalPolicy.DESTROY,
            }),
          ),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    if (props.privateEndpoints ?? true) {
      this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
      this.vpc.addGatewayEndpoint('DynamoDb', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });
      this.vpc.addInterfaceEndpoint('EcrApi', { service: ec2.InterfaceVpcEndpointAwsService.ECR });
      this.vpc.addInterfaceEndpoint('EcrDocker', { service: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER });
    }
    this.securityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', {
      vpc: this.vpc,
      description: 'AutoDev workers: no inbound traffic; outbound to provider APIs and git hosts',
      allowAllOutbound: true,
    });
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.providerSecret = new secretsmanager.Secret(this, 'ProviderKeys', {
      description:
        'AutoDev provider credentials: a JSON object such as {"ANTHROPIC_API_KEY": "...", "GIT_TOKEN": "..."}',
      secretObjectValue: {},
    });
    const arm = props.arch === 'arm64';
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Worker', {
      cpu: Math.round((props.cpu ?? 1) * 1024),
      memoryLimitMiB: props.memoryLimitMiB ?? 2048,
      ephemeralStorageGiB: props.ephemeralStorageGiB ?? 50,
      runtimePlatform: {
        cpuArchitecture: arm ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    this.taskDefinition.addVolume({ name: 'workspace' });
    this.taskDefinition.addVolume({ name: 'tmp' });
    const root = repoRoot();
    this.container = this.taskDefinition.addContainer(WORKER_CONTAINER, {
      image: ecs.ContainerImage.fromAsset(root, {
        file: join('containers', 'worker', 'Dockerfile'),
        platform: arm ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        buildArgs: props.buildArgs,
        exclude: ['*', '!package.json', '!package-lock.json', '!lib', '!containers'],
      }),
      // the supervisor starts as root only to run the agent and gates as another user (uid 10002,
      // `agent`), who cannot read its environment, its credentials or its files
      user: '0',
      readonlyRootFilesystem: true,
      essential: true,
      // ECS runs an init process as PID 1 (no image change, works with the read-only root file
      // system): it reaps the orphans agents leave behind and forwards SIGTERM to the supervisor
      linuxParameters: new ecs.LinuxParameters(this, 'WorkerLinuxParameters', { initProcessEnabled: true }),
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'worker',
        logGroup: new logs.LogGroup(this, 'WorkerLogs', {
          retention: logs.RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      }),
      // names only, never secret values: the worker reads the secret at run time
      environment: {
        TASKS_TABLE_NAME: props.store.table.tableName,
        AUTODEV_RETENTION_DAYS: String(props.store.retentionDays),
        PROVIDER_SECRET_ARN: this.providerSecret.secretArn,
        AUTODEV_PROVIDERS: this.providers,
        AUTODEV_WORKSPACES: '/workspace',
        ...(props.mergeTrain ? { AUTODEV_MERGE_TRAIN: 'on' } : {}),
      },
    });
    this.container.addMountPoints(
      { sourceVolume: 'workspace', containerPath: '/workspace', readOnly: false },
      // some CLIs write to /tmp whatever TMPDIR says; the root file system stays read-only
      { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
    );
    props.store.grantTaskWorker(this.taskDefinition.taskRole);
    this.providerSecret.grantRead(this.taskDefinition.taskRole);
  }
}
