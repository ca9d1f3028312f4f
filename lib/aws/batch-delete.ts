import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';

type Key = Record<string, unknown>;

/** Writes 25 requests at a time, asking again for what DynamoDB left unprocessed (backing off). */
export async function batchWrite(
  doc: DynamoDBDocumentClient,
  table: string,
  requests: NonNullable<BatchWriteCommandInput['RequestItems']>[string],
  what: string,
): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let request: BatchWriteCommandInput['RequestItems'] = { [table]: requests.slice(i, i + 25) };
    for (let round = 0; request && Object.keys(request).length > 0; round++) {
      if (round > 8) throw new Error(`DynamoDB kept refusing ${what}`);
      if (round > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
      const out: { UnprocessedItems?: BatchWriteCommandInput['RequestItems'] } = await doc.send(
        new BatchWriteCommand({ RequestItems: request }),
      );
      request = out.UnprocessedItems;
    }
  }
}

/** Deletes items by key, 25 at a time. */
export function batchDelete(doc: DynamoDBDocumentClient, table: string, keys: Key[], what: string) {
  return batchWrite(
    doc,
    table,
    keys.map((Key) => ({ DeleteRequest: { Key } })),
    what,
  );
}
