import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface TaskQueueProps {
  /** Deliveries before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** @default 60 seconds (six times the dispatcher's timeout is AWS's advice; it runs 10 s) */
  readonly visibilityTimeout?: Duration;
}

/**
 * The SQS FIFO task queue (one message group per task, high-throughput FIFO: throughput and
 * deduplication per group) with its FIFO dead-letter queue, both KMS-encrypted.
 */
export class TaskQueue extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: TaskQueueProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', { description: 'AutoDev task queue', enableKeyRotation: true });
    const common = {
      fifo: true,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
    };
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      ...common,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...common,
      contentBasedDeduplication: false,
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: props.visibilityTimeout ?? Duration.seconds(60),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });
  }

  /** Lets `grantee` send task messages, and sets TASK_QUEUE_URL. */
  grantSend(grantee: iam.IGrantable & { addEnvironment?: (k: string, v: string) => unknown }): void {
    this.queue.grantSendMessages(grantee);
    grantee.addEnvironment?.('TASK_QUEUE_URL', this.queue.queueUrl);
  }
}
