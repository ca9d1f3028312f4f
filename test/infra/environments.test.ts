import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { App, Stack, Token } from 'aws-cdk-lib';
import { nagValue } from '../../lib/infra/nag-value.js';
import { repoRoot } from '../../lib/infra/paths.js';
import { AUDIENCE, CLI_CONTEXT, ISSUER, synthStack } from './synth.js';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

/** The environments a customer synthesizes in: the CDK CLI always sets a region, and an account with credentials. */
const ENVIRONMENTS: Array<[string, Record<string, string>]> = [
  ['a concrete account and region', { CDK_DEFAULT_ACCOUNT: ACCOUNT, CDK_DEFAULT_REGION: REGION }],
  ['a region only (the CLI without credentials)', { CDK_DEFAULT_REGION: REGION }],
  ['no environment (environment-agnostic)', {}],
];

describe('synthesis in every environment the CDK CLI gives the app', () => {
  it.each(ENVIRONMENTS)('synthesizes with %s and zero unacknowledged cdk-nag findings', (_name, env) => {
    // Arrange
    const { stack, assembly } = synthStack({}, env);
    // Act: cdk-nag runs as a validation plugin; any unacknowledged finding fails synthesis
    const cloud = assembly();
    // Assert: the environment took effect, and no lookup is left for the CLI to make
    expect({
      account: Token.isUnresolved(stack.account) ? undefined : stack.account,
      region: Token.isUnresolved(stack.region) ? undefined : stack.region,
    }).toEqual({ account: env.CDK_DEFAULT_ACCOUNT, region: env.CDK_DEFAULT_REGION });
    expect(cloud.manifest.missing ?? []).toEqual([]);
    const template = cloud.getStackByName(stack.stackName).template as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const subnets = Object.values(template.Resources).filter((r) => r.Type === 'AWS::EC2::Subnet');
    const zones = new Set(subnets.map((s) => JSON.stringify(s.Properties.AvailabilityZone)));
    expect(zones.size).toBe(2);
    if (env.CDK_DEFAULT_ACCOUNT) expect([...zones].sort()).toEqual(['"eu-west-1a"', '"eu-west-1b"']);
  });

  it.each([
    [{}, 'arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/group/*'],
    [{ region: REGION }, `arn:aws:scheduler:${REGION}:<AWS::AccountId>:schedule/group/*`],
    [{ account: ACCOUNT, region: REGION }, `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/group/*`],
  ])('formats an ARN the way cdk-nag prints it in a finding id (env %j)', (env, printed) => {
    // Arrange
    const app = new App({ context: CLI_CONTEXT });
    const stack = new Stack(app, 'S', { env });
    // Act
    const value = nagValue(
      stack,
      stack.formatArn({ service: 'scheduler', resource: 'schedule', resourceName: 'group/*' }),
    );
    // Assert
    expect(value).toBe(printed);
  });

  it('synthesizes through bin/cdk.ts as the CLI runs it (CDK_OUTDIR, CDK_CONTEXT_JSON, CDK_DEFAULT_REGION)', async () => {
    // Arrange: the variables `cdk synth` hands the app process
    const outdir = mkdtempSync(join(tmpdir(), 'autodev-cdk-out-'));
    const env = {
      ...process.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...CLI_CONTEXT, issuer: ISSUER, audience: AUDIENCE }),
      CDK_DEFAULT_REGION: REGION,
      CDK_DEFAULT_ACCOUNT: ACCOUNT,
    };
    // Act
    await promisify(execFile)(process.execPath, [join(repoRoot(), 'dist', 'bin', 'cdk.js')], {
      env,
      cwd: repoRoot(),
    });
    // Assert
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as {
      artifacts: Record<string, { environment?: string }>;
      missing?: unknown[];
    };
    expect(manifest.artifacts.AutoDev?.environment).toBe(`aws://${ACCOUNT}/${REGION}`);
    expect(manifest.missing ?? []).toEqual([]);
  });
});
