import { type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { VersionConflictError } from '../core/errors.js';
import type { ProviderState, ProviderStateStore } from '../core/provider-health.js';

/** The partition of the providers' health and slots (`PROVIDERS` / `<provider>`). */
export const PROVIDERS_PK = 'PROVIDERS';
/** The partition of the agent roles' slot pools (`ROLESLOTS` / `role:<name>`, core role-slots.ts). */
export const ROLE_SLOTS_PK = 'ROLESLOTS';

/**
 * Slot states (provider health and slots, or a role's slot pool) as items of one partition of the
 * tasks table: `<partition>` / `<name>` + version, data (JSON). Every change is a conditional write
 * on `version`.
 */
export class DynamoSlotStates implements ProviderStateStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly pk: string,
  ) {}

  async getProviderState(name: string): Promise<ProviderState | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: this.pk, sk: name }, ConsistentRead: true }),
    );
    return typeof res.Item?.data === 'string' ? (JSON.parse(res.Item.data) as ProviderState) : undefined;
  }

  async putProviderState(state: ProviderState, expectedVersion: number): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: this.pk, sk: state.provider, version: state.version, data: JSON.stringify(state) },
          ...(expectedVersion < 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'version = :expected',
                ExpressionAttributeValues: { ':expected': expectedVersion },
              }),
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') {
        throw new VersionConflictError(`The state of ${state.provider} changed meanwhile.`);
      }
      throw err;
    }
  }

  async listProviderStates(): Promise<ProviderState[]> {
    const out: ProviderState[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': this.pk },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      out.push(...(res.Items ?? []).map((i) => JSON.parse(String(i.data)) as ProviderState));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }
}
