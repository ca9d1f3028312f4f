import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TASK_TABLE } from '../aws/task-table.js';
import { DEFAULT_RETENTION_DAYS } from '../core/retention.js';

export interface TaskStoreProps {
  /** @default RemovalPolicy.RETAIN: tasks and their logs outlive the stack */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Days a finished task and its log lines are kept: their items carry a TTL (the table's `ttl`
   * attribute) that DynamoDB deletes them after; 0 keeps them forever. @default 90
   */
  readonly retentionDays?: number;
}

/**
 * The tasks table (lib/aws/task-table.ts): on demand, point-in-time recovery, a customer-managed key
 * (which also encrypts the stack's log groups: lib/infra/log-encryption.ts), TTL.
 */
export class TaskStore extends Construct {
  public readonly table: dynamodb.Table;
  public readonly key: kms.Key;
  /** Days finished tasks and their logs are kept (0: forever); every writer is told (AUTODEV_RETENTION_DAYS). */
  public readonly retentionDays: number;

  constructor(scope: Construct, id: string, props: TaskStoreProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.retentionDays = props.retentionDays ?? DEFAULT_RETENTION_DAYS;
    if (!(this.retentionDays >= 0))
      throw new Error(`retentionDays must be 0 or more, not ${this.retentionDays}.`);
    this.key = new kms.Key(this, 'Key', {
      description: 'AutoDev tasks table and logs',
      enableKeyRotation: true,
      removalPolicy,
    });
    const s = dynamodb.AttributeType.STRING;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TASK_TABLE.partitionKey, type: s },
      sortKey: { name: TASK_TABLE.sortKey, type: s },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TASK_TABLE.ttlAttribute,
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
    for (const index of [TASK_TABLE.byTenant, TASK_TABLE.byStatus]) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: s },
        sortKey: { name: index.sortKey, type: s },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    this.table.addGlobalSecondaryIndex({
      indexName: TASK_TABLE.byLease.indexName,
      partitionKey: { name: TASK_TABLE.byLease.partitionKey, type: s },
      sortKey: { name: TASK_TABLE.byLease.sortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
  }

  /**
   * What one attempt's worker needs, nothing more: get and conditionally write task items
   * (`TASK#...`: the task, its lease, its attempt reports) and append log lines (`LOG#...`) by key.
   * No Query, Scan or DeleteItem: the worker cannot list tasks, read the indexes, or touch
   * idempotency keys, schedules or webhook deliveries. Role settings (`ROLESET#...`, full-access
   * mode) it may only read: an admin changes them through the API.
   */
  grantTaskWorker(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
      resourceArns: [this.table.tableArn],
      // provider health (rate limits the gateway saw) and the tenants' spend counters too
      conditions: {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['TASK#*', 'LOG#*', 'PROVIDERS', 'SPEND#*'] },
      },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem'],
      resourceArns: [this.table.tableArn],
      // the full-access setting of its task's role, read as the attempt starts
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ROLESET#*'] } },
    });
    this.table.encryptionKey?.grantEncryptDecrypt(grantee);
  }

  /** Read and conditional-write access to tasks, logs and reports; sets TASKS_TABLE_NAME and AUTODEV_RETENTION_DAYS. */
  grantReadWrite(grantee: iam.IGrantable & { addEnvironment?: (k: string, v: string) => unknown }): void {
    this.table.grantReadWriteData(grantee);
    grantee.addEnvironment?.('TASKS_TABLE_NAME', this.table.tableName);
    grantee.addEnvironment?.('AUTODEV_RETENTION_DAYS', String(this.retentionDays));
  }
}
