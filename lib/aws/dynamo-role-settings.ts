import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { RoleSetting, RoleSettingsStore } from '../core/role-settings.js';
import { TASK_TABLE } from './task-table.js';

/** The partition of one tenant's role settings. */
export const roleSettingsPk = (tenant: string) => `ROLESET#${tenant}`;

/**
 * Role settings (full access) per tenant, in the tasks table: `ROLESET#<tenant>` / `<role>` +
 * fullAccess, updatedBy, updatedAt. The API function writes them (admins only, audited); the
 * workflow's worker reads its task's one when the attempt starts.
 */
export class DynamoRoleSettings implements RoleSettingsStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
  }

  async get(tenant: string, role: string): Promise<RoleSetting | undefined> {
    const res = await this.doc.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [TASK_TABLE.partitionKey]: roleSettingsPk(tenant), [TASK_TABLE.sortKey]: role },
        // an admin's change holds for the next attempt that starts, not an eventually later one
        ConsistentRead: true,
      }),
    );
    const item = res.Item;
    if (!item) return undefined;
    return {
      tenant,
      role,
      fullAccess: item.fullAccess === true,
      updatedBy: typeof item.updatedBy === 'string' ? item.updatedBy : '',
      updatedAt: typeof item.updatedAt === 'string' ? item.updatedAt : '',
    };
  }

  async put(s: RoleSetting): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          [TASK_TABLE.partitionKey]: roleSettingsPk(s.tenant),
          [TASK_TABLE.sortKey]: s.role,
          fullAccess: s.fullAccess,
          updatedBy: s.updatedBy,
          updatedAt: s.updatedAt,
        },
      }),
    );
  }
}
