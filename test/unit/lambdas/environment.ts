import { randomBytes } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoTaskStore } from '../../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../../lib/aws/task-table.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../support/dynamodb-local.js';

export const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/autodev-tasks.fifo';
export const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:autodev-task';
export const CLUSTER_ARN = 'arn:aws:ecs:eu-west-1:123456789012:cluster/autodev';

/**
 * The environment the stack gives the functions, with DynamoDB pointed at DynamoDB Local (the SDK
 * reads AWS_ENDPOINT_URL_DYNAMODB). Other AWS clients are faked with aws-sdk-client-mock.
 */
export async function lambdaEnvironment(): Promise<{ ddb: DynamoDbLocal; store: DynamoTaskStore }> {
  const ddb = await startDynamoDbLocal();
  const tableName = `tasks-${randomBytes(4).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  Object.assign(process.env, {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint,
    TASKS_TABLE_NAME: tableName,
    TASK_QUEUE_URL: QUEUE_URL,
    STATE_MACHINE_ARN,
    CLUSTER_ARN,
    AUTODEV_PROVIDERS: 'claude,codex',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  return { ddb, store: new DynamoTaskStore({ client: ddb.client, tableName }) };
}
