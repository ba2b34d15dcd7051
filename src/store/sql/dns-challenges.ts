import { sql } from 'kysely';
import type { DnsChallengeStore } from '../store.js';
import type { SqlContext } from './context.js';
import { prepared } from './prepared.js';

// Read by the dns role for each query (or each batch of them) under the challenge zone: the usual
// batch, a single label, is prepared once.
const valuesAt = prepared((db, { label, now }: { label: string; now: string }) =>
  db
    .selectFrom('dns_challenges')
    .select(['label', 'value'])
    .where('label', '=', label)
    .where('expires_at', '>', now)
    .orderBy('created_at')
    .orderBy('value'),
);

export function dnsChallengeQueries({ db }: SqlContext): DnsChallengeStore {
  return {
    async putDnsChallenge(record) {
      // Inserted only while the claim exists, by a condition rather than by catching the foreign
      // key's error: inside a PostgreSQL transaction an error aborts the transaction, caught or not.
      const { domainId } = record;
      const result = await db
        .insertInto('dns_challenges')
        .columns(['label', 'value', 'domain_id', 'created_at', 'expires_at'])
        .expression(
          db
            .selectNoFrom((eb) => [
              eb.val(record.label).as('label'),
              eb.val(record.value).as('value'),
              eb.val(domainId).as('domain_id'),
              eb.val(record.createdAt).as('created_at'),
              eb.val(record.expiresAt).as('expires_at'),
            ])
            // Always a WHERE: SQLite reads `INSERT … SELECT … ON CONFLICT` unambiguously only with one.
            .where(({ exists, selectFrom }) =>
              domainId === null
                ? sql<boolean>`1 = 1`
                : exists(selectFrom('domains').select('id').where('id', '=', domainId)),
            ),
        )
        .onConflict((oc) =>
          oc.columns(['label', 'value']).doUpdateSet({ domain_id: domainId, expires_at: record.expiresAt }),
        )
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async removeDnsChallenge(label, value) {
      await db.deleteFrom('dns_challenges').where('label', '=', label).where('value', '=', value).execute();
    },
    async listDnsChallengeValues(labels, now) {
      if (labels.length === 0) return [];
      if (labels.length === 1) return (await valuesAt(db, { label: labels[0] as string, now })).rows;
      return db
        .selectFrom('dns_challenges')
        .select(['label', 'value'])
        .where('label', 'in', labels)
        .where('expires_at', '>', now)
        .orderBy('created_at')
        .orderBy('value')
        .execute();
    },
    async deleteExpiredDnsChallenges(now, limit) {
      // In bounded batches, as the other housekeeping deletes: no statement holds the table long.
      const result = await db
        .deleteFrom('dns_challenges')
        .where(({ eb, refTuple, selectFrom }) =>
          eb(
            refTuple('label', 'value'),
            'in',
            selectFrom('dns_challenges')
              .select(['label', 'value'])
              .where('expires_at', '<=', now)
              .orderBy('expires_at')
              .limit(limit)
              .$asTuple('label', 'value'),
          ),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
