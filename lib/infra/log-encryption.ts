import { ArnFormat, Aspects, type IAspect, type Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { IConstruct } from 'constructs';

/** Sets the key of every log group that has none (those of the constructs and those CDK adds). */
class EncryptLogGroups implements IAspect {
  constructor(private readonly key: kms.IKey) {}

  visit(node: IConstruct): void {
    if (node instanceof logs.CfnLogGroup && node.kmsKeyId === undefined) node.kmsKeyId = this.key.keyArn;
  }
}

/**
 * Encrypts every log group of the stack with `key`, and lets CloudWatch Logs in the stack's own
 * region use the key for this account's log groups only (the encryption context names the log
 * group). Region, partition suffix and account come from the stack, so it holds in any environment.
 */
export function encryptLogGroups(stack: Stack, key: kms.Key): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsOfThisAccount',
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.${stack.urlSuffix}`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
  Aspects.of(stack).add(new EncryptLogGroups(key));
}
