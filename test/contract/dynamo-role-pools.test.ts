import { randomBytes } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DynamoSlotStates, ROLE_SLOTS_PK } from '../../lib/aws/dynamo-slot-states.js';
import { DynamoTaskStore } from '../../lib/aws/dynamo-task-store.js';
import { createTaskTableInput } from '../../lib/aws/task-table.js';
import { admitProviderSlot, DEFAULT_PROVIDER_LIMITS } from '../../lib/core/provider-slots.js';
import { admitRoleSlot, releaseRoleSlot } from '../../lib/core/role-slots.js';
import { BUILT_IN_ROLES } from '../../lib/core/roles.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';

let ddb: DynamoDbLocal;
let pools: DynamoSlotStates;
let store: DynamoTaskStore;

beforeAll(async () => {
  ddb = await startDynamoDbLocal();
  const tableName = `pools-${randomBytes(6).toString('hex')}`;
  await ddb.client.send(new CreateTableCommand(createTaskTableInput(tableName)));
  pools = new DynamoSlotStates(DynamoDBDocumentClient.from(ddb.client), tableName, ROLE_SLOTS_PK);
  store = new DynamoTaskStore({ client: ddb.client, tableName });
}, 60_000);

afterAll(async () => {
  await ddb?.stop();
});

const ml = { ...(BUILT_IN_ROLES.ml as NonNullable<typeof BUILT_IN_ROLES.ml>), maxConcurrent: 3 };

describe('role slot pools on DynamoDB', () => {
  it('admits exactly maxConcurrent of many attempts taking the role’s slots at once', async () => {
    // Act: twelve admissions race on the pool's item (conditional writes on its version)
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => admitRoleSlot(pools, ml, `t${i}#1`, now, now + 3_600_000)),
    );
    // Assert
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    const state = await pools.getProviderState('role:ml');
    expect(Object.keys(state?.slots ?? {})).toHaveLength(3);
    // a release frees one place, for one more
    const holder = Object.keys(state?.slots ?? {})[0] as string;
    await releaseRoleSlot(pools, ml, holder, now);
    expect((await admitRoleSlot(pools, ml, 'late#1', now, now + 3_600_000)).ok).toBe(true);
    expect((await admitRoleSlot(pools, ml, 'later#1', now, now + 3_600_000)).ok).toBe(false);
  });

  it('keeps the roles’ pools apart from the providers’ health (GET /v1/providers lists providers only)', async () => {
    const now = Date.now();
    await admitProviderSlot(store, 'claude', 'x#1', now, now + 60_000, DEFAULT_PROVIDER_LIMITS);
    expect((await store.listProviderStates()).map((s) => s.provider)).toEqual(['claude']);
    expect((await pools.listProviderStates()).map((s) => s.provider)).toEqual(['role:ml']);
  });
});
