import type { IdempotencyStore } from '../store.js';
import type { SqlContext } from './context.js';

export function idempotencyQueries({ db }: SqlContext): IdempotencyStore {
  return {
    async claimIdempotencyKey(orgId, key, requestHash, now) {
      const inserted = await db
        .insertInto('idempotency_keys')
        .values({ org_id: orgId, key, request_hash: requestHash, created_at: now })
        .onConflict((oc) => oc.columns(['org_id', 'key']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return undefined;
      const row = await db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('key', '=', key)
        .executeTakeFirst();
      // Released between the two statements: take it now.
      if (!row) return this.claimIdempotencyKey(orgId, key, requestHash, now);
      return {
        requestHash: row.request_hash,
        responseStatus: row.response_status,
        responseBody: row.response_body,
        createdAt: row.created_at,
      };
    },
    async saveIdempotentResponse(orgId, key, status, body) {
      await db
        .updateTable('idempotency_keys')
        .set({ response_status: status, response_body: body })
        .where('org_id', '=', orgId)
        .where('key', '=', key)
        .execute();
    },
    async releaseIdempotencyKey(orgId, key) {
      await db.deleteFrom('idempotency_keys').where('org_id', '=', orgId).where('key', '=', key).execute();
    },
    async deleteIdempotencyKeysBefore(cutoff, limit) {
      // In bounded batches, oldest first (the created_at index), so no delete holds the table long.
      const result = await db
        .deleteFrom('idempotency_keys')
        .where(({ eb, refTuple, selectFrom }) =>
          eb(
            refTuple('org_id', 'key'),
            'in',
            selectFrom('idempotency_keys')
              .select(['org_id', 'key'])
              .where('created_at', '<', cutoff)
              .orderBy('created_at')
              .limit(limit)
              .$asTuple('org_id', 'key'),
          ),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
