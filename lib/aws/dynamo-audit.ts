import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AuditEntry, AuditQuery, NewAuditEntry } from '../core/audit.js';
import { ValidationError } from '../core/errors.js';
import type { ErasableAuditLog } from '../core/ports.js';
import { batchDelete } from './batch-delete.js';
import { TASK_TABLE } from './task-table.js';

/**
 * The audit trail on the task table (see task-table.ts), one partition per tenant:
 * `AUDIT#<tenant>` (`AUDIT#-` for calls without a trusted token) / `E#<ISO time>#<12 random hex>`
 * + auditAction, auditSubject, auditStatus (for filters), data (the entry as JSON). The items
 * carry none of the index keys, so they never show up among tasks. Entries are only put, on the
 * condition that none is there yet: this adapter changes none, and removes them only for a
 * tenant's erasure, those older than the legal hold (`eraseBefore`).
 */
const pk = (tenant: string | null) => `AUDIT#${tenant ?? '-'}`;
const PREFIX = 'E#';

type Item = Record<string, unknown>;

const badCursor = () =>
  new ValidationError('cursor is not one this API gave.', [{ field: 'cursor', message: 'malformed' }]);

function decodeCursor(cursor: string): string {
  const sk = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!sk.startsWith(PREFIX) || Buffer.from(sk, 'utf8').toString('base64url') !== cursor) throw badCursor();
  return sk;
}

export class DynamoAuditLog implements ErasableAuditLog {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async append(entry: NewAuditEntry): Promise<void> {
    // random, not the request id: two entries of one millisecond never share a key
    const sk = `${PREFIX}${entry.at}#${randomBytes(6).toString('hex')}`;
    const full: AuditEntry = { id: Buffer.from(sk, 'utf8').toString('base64url'), ...entry };
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          [TASK_TABLE.partitionKey]: pk(entry.tenant),
          [TASK_TABLE.sortKey]: sk,
          auditAction: entry.action,
          auditSubject: entry.subject ?? undefined,
          auditStatus: entry.status,
          data: JSON.stringify(full),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /** Deletes the tenant's entries answered before `before` (their keys sort by time). */
  async eraseBefore(tenant: string, before: string): Promise<number> {
    const keys: Item[] = [];
    let start: Item | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          // `E#<at>#<random>` < `E#<before>` exactly when at < before
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          ExpressionAttributeValues: { ':pk': pk(tenant), ':lo': PREFIX, ':hi': `${PREFIX}${before}` },
          ProjectionExpression: 'pk, sk',
          ExclusiveStartKey: start,
        }),
      );
      keys.push(...(res.Items ?? []));
      start = res.LastEvaluatedKey;
    } while (start);
    await batchDelete(this.doc, this.table, keys, `audit entries of ${tenant}`);
    return keys.length;
  }

  async list(tenant: string, q: AuditQuery): Promise<{ items: AuditEntry[]; nextCursor?: string }> {
    const filters: string[] = [];
    const values: Item = {
      ':pk': pk(tenant),
      ':lo': `${PREFIX}${q.since ?? ''}`,
      ':hi': `${PREFIX}${q.until ?? '9999'}#\uffff`,
    };
    if (q.action !== undefined) {
      filters.push('auditAction = :action');
      values[':action'] = q.action;
    }
    if (q.subject !== undefined) {
      filters.push('auditSubject = :subject');
      values[':subject'] = q.subject;
    }
    if (q.result === 'ok') filters.push('auditStatus < :s400');
    else if (q.result === 'refused') filters.push('auditStatus >= :s400');
    else if (q.result !== undefined) {
      filters.push('auditStatus = :status');
      values[':status'] = q.result;
    }
    if (q.result === 'ok' || q.result === 'refused') values[':s400'] = 400;
    const items: AuditEntry[] = [];
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    // a cursor from before the time range is past its end; one from after it starts at its top
    if (after !== undefined && after <= (values[':lo'] as string)) return { items };
    let start: Item | undefined =
      after !== undefined && after <= (values[':hi'] as string)
        ? { [TASK_TABLE.partitionKey]: pk(tenant), [TASK_TABLE.sortKey]: after }
        : undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          FilterExpression: filters.length ? filters.join(' AND ') : undefined,
          ExpressionAttributeValues: values,
          ExclusiveStartKey: start,
          ScanIndexForward: false,
          Limit: q.limit + 1,
        }),
      );
      for (const item of res.Items ?? []) items.push(JSON.parse(item.data as string) as AuditEntry);
      start = res.LastEvaluatedKey;
    } while (start && items.length <= q.limit);
    const page = items.slice(0, q.limit);
    return items.length > q.limit ? { items: page, nextCursor: page[page.length - 1]?.id } : { items: page };
  }
}
