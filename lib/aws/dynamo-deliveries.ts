import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DeliveryLog } from '../core/webhooks.js';
import { TASK_TABLE } from './task-table.js';

/**
 * Webhook deliveries already acted on, in the tasks table (`WEBHOOK#<delivery id>` / `DELIVERY`,
 * expiring after `ttlSeconds`): a conditional put, so of two concurrent deliveries with one id
 * exactly one is new, and a replay is refused.
 */
export class DynamoDeliveryLog implements DeliveryLog {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly ttlSeconds = 30 * 86_400,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
  }

  async seen(id: string): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            [TASK_TABLE.partitionKey]: `WEBHOOK#${id}`,
            [TASK_TABLE.sortKey]: 'DELIVERY',
            [TASK_TABLE.ttlAttribute]: Math.ceil(Date.now() / 1000) + this.ttlSeconds,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return false;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') return true;
      throw err;
    }
  }
}
