import type { Kysely } from 'kysely';

/**
 * The TXT records of delegated DNS-01 challenges, which the `dns` role answers at
 * `{label}.{PORTICO_ACME_DNS_ZONE}` (src/dns-server/). A row per value: one name holds several
 * while the CA validates a certificate for `acme.com` and `*.acme.com`, whose challenges both sit
 * at `_acme-challenge.acme.com`, and so behind its one CNAME at one label.
 *
 * The key (label, value) is also the index the dns role reads by label. `domain_id` is the claim a
 * record was written for: deleting the claim deletes its records. `expires_at` bounds how long a
 * record left behind by a crashed issuer is answered; the worker's housekeeping deletes it later.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('dns_challenges')
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('domain_id', 'text', (c) => c.references('domains.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('dns_challenges_pkey', ['label', 'value'])
    .execute();
  await db.schema.createIndex('dns_challenges_expires').on('dns_challenges').column('expires_at').execute();
  // The cascade from `domains` looks rows up by claim; without an index each claim deleted would
  // read the whole table (small, but a claim's delete should not depend on it staying so).
  await db.schema.createIndex('dns_challenges_domain').on('dns_challenges').column('domain_id').execute();
}
