import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { taskIdFloor } from '../core/ids.js';
import type { Task } from '../core/schemas.js';
import {
  computeStats,
  type ProviderFigures,
  type ProviderStatsQuery,
  providerFigures,
  type StatsQuery,
  type TaskStats,
  type TaskStatsSource,
  windowStart,
  zeroCounts,
} from '../core/stats.js';
import { TASK_TABLE } from './task-table.js';

export interface DynamoTaskStatsOptions {
  client: DynamoDBClient;
  tableName: string;
  /** The most tasks one request reads. @default 5000 */
  scanLimit?: number;
}

/**
 * `GET /v1/stats` on DynamoDB, which has no aggregates: the tenant's newest tasks are read from the
 * byTenant index (at most `scanLimit` of them) and the figures computed in memory. The answer's
 * `basis` says how many were read and whether the tenant has more (then the counts, and the oldest
 * days of the series, cover only what was read).
 */
export class DynamoTaskStats implements TaskStatsSource {
  private readonly doc: DynamoDBDocumentClient;
  private readonly scanLimit: number;

  constructor(private readonly opts: DynamoTaskStatsOptions) {
    this.doc = DynamoDBDocumentClient.from(opts.client);
    this.scanLimit = opts.scanLimit ?? 5000;
  }

  async stats(tenant: string, query: StatsQuery, now: Date): Promise<TaskStats> {
    const since = windowStart(now, query.days).toISOString();
    const window: Task[] = [];
    const current: Task[] = [];
    const counts = zeroCounts();
    let scanned = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.opts.tableName,
          IndexName: TASK_TABLE.byTenant.indexName,
          KeyConditionExpression: 'tenant = :tenant',
          ExpressionAttributeValues: { ':tenant': tenant },
          ProjectionExpression: '#data',
          ExpressionAttributeNames: { '#data': 'data' },
          ScanIndexForward: false,
          Limit: Math.min(1000, this.scanLimit - scanned),
          ExclusiveStartKey: start,
        }),
      );
      for (const item of res.Items ?? []) {
        if (typeof item.data !== 'string') continue;
        const task = JSON.parse(item.data) as Task;
        scanned++;
        counts[task.status]++;
        if (task.status === 'queued' || task.status === 'running') current.push(task);
        if (query.days > 0 && task.createdAt >= since) window.push(task);
      }
      start = res.LastEvaluatedKey;
    } while (start && scanned < this.scanLimit);
    return computeStats({
      tenant,
      now,
      query,
      window,
      counts,
      current,
      basis: { kind: 'scan', scanned, scanLimit: this.scanLimit, truncated: start !== undefined },
    });
  }

  /**
   * Each provider's figures per role from the tenant's newest tasks of the window (a key range of
   * the byTenant index, the role filtered on the item): at most `query.limit` of them, and at most
   * `scanLimit` items read.
   */
  async providerStats(tenant: string, query: ProviderStatsQuery, now: Date): Promise<ProviderFigures[]> {
    const floor = taskIdFloor(windowStart(now, query.days).getTime());
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const tasks: Task[] = [];
    let scanned = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.opts.tableName,
          IndexName: TASK_TABLE.byTenant.indexName,
          // task ids sort by creation time: the window is a key range
          KeyConditionExpression: 'tenant = :tenant AND taskId >= :floor',
          ...(query.role ? { FilterExpression: '#role = :role' } : {}),
          ExpressionAttributeValues: {
            ':tenant': tenant,
            ':floor': floor,
            ...(query.role ? { ':role': query.role } : {}),
          },
          ProjectionExpression: '#data',
          ExpressionAttributeNames: { '#data': 'data', ...(query.role ? { '#role': 'taskRole' } : {}) },
          ScanIndexForward: false,
          Limit: Math.min(1000, this.scanLimit - scanned),
          ExclusiveStartKey: start,
        }),
      );
      scanned += res.ScannedCount ?? 0;
      for (const item of res.Items ?? []) {
        if (typeof item.data !== 'string' || tasks.length >= limit) continue;
        tasks.push(JSON.parse(item.data) as Task);
      }
      start = res.LastEvaluatedKey;
    } while (start && tasks.length < limit && scanned < this.scanLimit);
    return providerFigures(tasks);
  }
}
