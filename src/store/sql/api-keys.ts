import type { Selectable } from 'kysely';
import type { ApiKeysTable } from '../schema.js';
import type { ApiKey, ApiKeyStore, ApiKeySummary } from '../store.js';
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
  /** Keys with their organization's name; the hash and its lookup prefix are never selected. */
  const summaries = () =>
    db
      .selectFrom('api_keys')
      .innerJoin('organizations', 'organizations.id', 'api_keys.org_id')
      .select([
        'api_keys.id as id',
        'api_keys.org_id as orgId',
        'organizations.name as orgName',
        'api_keys.name as name',
        'api_keys.scope as scope',
        'api_keys.created_at as createdAt',
      ]);
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
    async listApiKeys(orgName): Promise<ApiKeySummary[]> {
      let query = summaries().orderBy('api_keys.created_at').orderBy('api_keys.id');
      if (orgName !== undefined) query = query.where('organizations.name', '=', orgName);
      return query.execute();
    },
    async deleteApiKey(id) {
      const key = await summaries().where('api_keys.id', '=', id).executeTakeFirst();
      if (!key) return undefined;
      await db.deleteFrom('api_keys').where('id', '=', id).execute();
      return key;
    },
  };
}
