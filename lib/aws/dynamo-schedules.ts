import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { Schedule, type ScheduleStore } from '../core/schedules.js';
import { TASK_TABLE } from './task-table.js';

/**
 * Schedules on the task table (see task-table.ts), one partition per tenant:
 * `SCHEDULES#<tenant>` / `SCHEDULE#<id>` + scheduleId, data (JSON). The items carry none of the
 * index keys (tenant, taskId, taskStatus), so they never show up among tasks.
 */
const pk = (tenant: string) => `SCHEDULES#${tenant}`;
const sk = (id: string) => `SCHEDULE#${id}`;

type Item = Record<string, unknown>;

const parse = (item: Item | undefined): Schedule | undefined =>
  item && typeof item.data === 'string' ? Schedule.parse(JSON.parse(item.data)) : undefined;

export class DynamoScheduleStore implements ScheduleStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(opts: { client: DynamoDBClient; tableName: string }) {
    this.doc = DynamoDBDocumentClient.from(opts.client, { marshallOptions: { removeUndefinedValues: true } });
    this.table = opts.tableName;
  }

  async create(schedule: Schedule): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          [TASK_TABLE.partitionKey]: pk(schedule.tenant),
          [TASK_TABLE.sortKey]: sk(schedule.id),
          scheduleId: schedule.id,
          data: JSON.stringify(schedule),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(tenant: string, id: string): Promise<Schedule | undefined> {
    const res = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { [TASK_TABLE.partitionKey]: pk(tenant), [TASK_TABLE.sortKey]: sk(id) },
        ConsistentRead: true,
      }),
    );
    return parse(res.Item);
  }

  async list(tenant: string): Promise<Schedule[]> {
    const out: Schedule[] = [];
    let start: Item | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': pk(tenant), ':prefix': 'SCHEDULE#' },
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      for (const item of res.Items ?? []) {
        const s = parse(item);
        if (s) out.push(s);
      }
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async delete(tenant: string, id: string): Promise<void> {
    await this.doc.send(
      new DeleteCommand({
        TableName: this.table,
        Key: { [TASK_TABLE.partitionKey]: pk(tenant), [TASK_TABLE.sortKey]: sk(id) },
      }),
    );
  }
}
