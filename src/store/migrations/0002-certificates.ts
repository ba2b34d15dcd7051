import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  // One current certificate per served hostname: a customer's domain or an app's default hostname.
  // A renewal replaces the row in one statement, so the edge reads the old or the new, never neither.
  await db.schema
    .createTable('certificates')
    .addColumn('hostname', 'text', (c) => c.primaryKey())
    .addColumn('domain_id', 'text')
    .addColumn('app_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text')
    .addColumn('certificate_pem', 'text')
    /** AES-256-GCM ciphertext of the PEM key (secrets/secret-box.ts); never the key itself. */
    .addColumn('private_key_enc', 'text')
    .addColumn('not_before', 'text')
    .addColumn('not_after', 'text')
    .addColumn('renew_at', 'text')
    .addColumn('last_error', 'text')
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('certificates_domain').on('certificates').column('domain_id').execute();

  // HTTP-01 answers, shared so that whichever edge node the CA reaches can answer.
  await db.schema
    .createTable('acme_challenges')
    .addColumn('token', 'text', (c) => c.primaryKey())
    .addColumn('key_authorization', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  // Every order placed with the CA: the per-account rate limit counts these, across all workers.
  await db.schema
    .createTable('certificate_orders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('hostname', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('certificate_orders_created')
    .on('certificate_orders')
    .column('created_at')
    .execute();

  // Small shared values: the ACME account key (encrypted).
  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
