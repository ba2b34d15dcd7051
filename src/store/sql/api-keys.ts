import type { Selectable } from 'kysely';
import type { ApiKeysTable } from '../schema.js';
import type { ApiKey, ApiKeyStore } from '../store.js';
import { type SqlContext, toCount } from './context.js';

const toApiKey = (row: Selectable<ApiKeysTable>): ApiKey => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  scope: row.scope,
  lookup: row.lookup,
  hash: row.hash,
  createdAt: row.created_at,
});

export function apiKeyQueries({ db }: SqlContext): ApiKeyStore {
  return {
    async insertApiKey(key) {
      await db
        .insertInto('api_keys')
        .values({
          id: key.id,
          org_id: key.orgId,
          name: key.name,
          scope: key.scope,
          lookup: key.lookup,
          hash: key.hash,
          created_at: key.createdAt,
        })
        .execute();
    },
    async findApiKeysByLookup(lookup) {
      const rows = await db.selectFrom('api_keys').selectAll().where('lookup', '=', lookup).execute();
      return rows.map(toApiKey);
    },
    async countApiKeys() {
      const row = await db
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      return toCount(row?.n as number | string | undefined);
    },
  };
}
