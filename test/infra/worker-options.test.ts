import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { ConfigError } from '../../lib/core/errors.js';
import { repoRoot } from '../../lib/infra/paths.js';
import { synthStack } from './synth.js';

let template: Template;
beforeAll(() => {
  ({ template } = synthStack());
});

describe('the worker image and its task definition', () => {
  it('runs an init process as PID 1 that reaps orphans (ECS initProcessEnabled)', () => {
    // Assert
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'worker',
          ReadonlyRootFilesystem: true,
          LinuxParameters: { InitProcessEnabled: true },
        }),
      ],
    });
  });

  it('builds on a Node version the pinned CLIs accept (22 or later)', () => {
    // Arrange
    const dockerfile = readFileSync(join(repoRoot(), 'containers', 'worker', 'Dockerfile'), 'utf8');
    // Act
    const image = dockerfile.match(/^ARG NODE_IMAGE=node:(\d+)[^\s]*$/m);
    const target = dockerfile.match(/--target=node(\d+)/);
    // Assert
    expect(Number(image?.[1])).toBeGreaterThanOrEqual(22);
    expect(Number(target?.[1])).toBe(Number(image?.[1]));
  });
});

/** The platforms of the Docker image assets in a synthesized assembly (what `cdk deploy` builds). */
function imagePlatforms(outdir: string, stackName: string): Array<string | undefined> {
  const manifest = JSON.parse(readFileSync(join(outdir, `${stackName}.assets.json`), 'utf8')) as {
    dockerImages: Record<string, { source: { platform?: string } }>;
  };
  return Object.values(manifest.dockerImages).map((image) => image.source.platform);
}

describe('-c workerArch', () => {
  it('runs x86_64 tasks from a linux/amd64 image by default', () => {
    // Arrange
    const { stack, template: x86, synth } = synthStack();
    // Act
    const outdir = synth();
    // Assert
    x86.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
    });
    expect(imagePlatforms(outdir, stack.artifactId)).toEqual(['linux/amd64']);
  });

  it('with arm64, runs ARM64 tasks from a linux/arm64 image, with zero cdk-nag findings', () => {
    // Arrange
    const { stack, template: arm, synth } = synthStack({ workerArch: 'arm64' });
    // Act: cdk-nag runs in synthesis and fails it on any unacknowledged finding
    const outdir = synth();
    // Assert
    arm.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    expect(imagePlatforms(outdir, stack.artifactId)).toEqual(['linux/arm64']);
  });

  it('refuses an architecture it does not know, naming the setting', () => {
    // Act and assert
    expect(() => synthStack({ workerArch: 'aarch64' })).toThrow(ConfigError);
    expect(() => synthStack({ workerArch: 'aarch64' })).toThrow(/workerArch: "aarch64"/);
  });
});

describe("log groups encrypted with the stack's key", () => {
  type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

  it('gives every log group the task store key', () => {
    // Arrange
    const resources = template.toJSON().Resources as Resources;
    const keyId = Object.keys(
      template.findResources('AWS::KMS::Key', {
        Properties: { Description: 'AutoDev tasks table and logs' },
      }),
    )[0];
    // Act
    const groups = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Logs::LogGroup');
    // Assert
    expect(keyId).toBeDefined();
    expect(groups.length).toBeGreaterThanOrEqual(5);
    for (const [, group] of groups)
      expect(group.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
  });

  const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
  const urlSuffix = { Ref: 'AWS::URLSuffix' };
  const account = { Ref: 'AWS::AccountId' };
  it.each([
    [
      {},
      join('logs.', { Ref: 'AWS::Region' }, '.', urlSuffix),
      join('arn:', { Ref: 'AWS::Partition' }, ':logs:', { Ref: 'AWS::Region' }, ':', account, ':log-group:*'),
    ],
    [
      { CDK_DEFAULT_REGION: 'eu-west-1' },
      join('logs.eu-west-1.', urlSuffix),
      join('arn:aws:logs:eu-west-1:', account, ':log-group:*'),
    ],
  ])(
    'lets CloudWatch Logs of the stack region use the key for log groups of this account only (env %j)',
    (env, principal, logGroups) => {
      // Arrange
      const { template: t } = synthStack({}, env);
      // Assert
      t.hasResourceProperties('AWS::KMS::Key', {
        Description: 'AutoDev tasks table and logs',
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Principal: { Service: principal },
              Action: Match.arrayWith(['kms:Decrypt*', 'kms:Encrypt*', 'kms:GenerateDataKey*']),
              Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': logGroups } },
            }),
          ]),
        },
      });
    },
  );
});

describe('-c natPerAz', () => {
  /** The private subnets' default routes: which NAT gateway each one leaves through. */
  function natRoutes(t: Template): string[] {
    return Object.values(
      t.findResources('AWS::EC2::Route', { Properties: { NatGatewayId: Match.anyValue() } }),
    ).map((route) => JSON.stringify(route.Properties.NatGatewayId));
  }

  it('has one NAT gateway shared by both zones by default', () => {
    // Assert
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    expect(new Set(natRoutes(template)).size).toBe(1);
  });

  it('with true, has a NAT gateway in each zone and routes each zone through its own, with zero cdk-nag findings', () => {
    // Arrange
    const { template: perAz, synth } = synthStack({ natPerAz: 'true' }, { CDK_DEFAULT_REGION: 'eu-west-1' });
    // Act: cdk-nag runs in synthesis and fails it on any unacknowledged finding
    synth();
    // Assert
    perAz.resourceCountIs('AWS::EC2::NatGateway', 2);
    const routes = natRoutes(perAz);
    expect(routes).toHaveLength(2);
    expect(new Set(routes).size).toBe(2);
  });

  it('refuses a value that is not true or false, naming the setting', () => {
    // Act and assert
    expect(() => synthStack({ natPerAz: 'yes' })).toThrow(/natPerAz: "yes" is not true or false/);
  });
});
