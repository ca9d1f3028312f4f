import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { lambdaEntry, repoRoot } from './paths.js';

export interface AutoDevFunctionProps {
  /** The entry point's file name under lambdas/, without `.ts`. */
  readonly entry: string;
  readonly description: string;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The team's Lambda defaults: arm64, Node 24, X-Ray tracing, Powertools settings, its own log group,
 * bundled by the local esbuild (no Docker) with the AWS SDK left to the runtime.
 */
export class AutoDevFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: AutoDevFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    super(scope, id, {
      entry: lambdaEntry(props.entry),
      handler: 'handler',
      description: props.description,
      projectRoot: repoRoot(),
      depsLockFilePath: `${repoRoot()}/package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'autodev',
        POWERTOOLS_METRICS_NAMESPACE: 'AutoDev',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        externalModules: ['@aws-sdk/*'],
        // ESM bundles of CommonJS dependencies need `require`
        banner: "import{createRequire}from'module';const require=createRequire(import.meta.url);",
        forceDockerBundling: false,
      },
    });
  }
}
