import { type Kysely, sql } from 'kysely';

// Migrations receive an untyped Kysely: they describe the schema at their own point in history.
// biome-ignore lint/suspicious/noExplicitAny: see above
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('organizations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('lookup', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('api_keys_lookup').on('api_keys').column('lookup').execute();

  await db.schema
    .createTable('apps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('slug', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('origin_url', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  // Slugs name default hostnames, so they are unique across all organizations.
  await db.schema.createIndex('apps_slug_key').on('apps').column('slug').unique().execute();
  await db.schema
    .createIndex('apps_org_created')
    .on('apps')
    .columns(['org_id', 'created_at', 'id'])
    .execute();

  await db.schema
    .createTable('domains')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('is_primary', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('verification_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('verified_at', 'text')
    .addColumn('verifying_since', 'text')
    .addColumn('last_checked_at', 'text')
    .addColumn('next_check_at', 'text')
    .addColumn('verification_errors', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('routing_observed', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('failure_streak', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // One claim per organization and name: a domain sits on one app of an organization at a time.
  await db.schema
    .createIndex('domains_org_name_key')
    .on('domains')
    .columns(['org_id', 'name'])
    .unique()
    .execute();
  // At most one primary domain per app, enforced by the database whatever the request order.
  await db.schema
    .createIndex('domains_one_primary_per_app')
    .on('domains')
    .column('app_id')
    .unique()
    .where(sql.ref('is_primary'), '=', 1)
    .execute();
  await db.schema
    .createIndex('domains_app_created')
    .on('domains')
    .columns(['app_id', 'created_at'])
    .execute();
  // Claims on the same name across organizations (handover) and the edge's Host lookup.
  await db.schema.createIndex('domains_name_status').on('domains').columns(['name', 'status']).execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull().unique())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('run_at', 'text', (c) => c.notNull())
    .addColumn('locked_by', 'text')
    .addColumn('locked_at', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  // The claim query: the earliest due, unlocked jobs.
  await db.schema
    .createIndex('jobs_due')
    .on('jobs')
    .columns(['run_at', 'id'])
    .where(sql.ref('locked_at'), 'is', null)
    .execute();
  await db.schema.createIndex('jobs_locked_at').on('jobs').column('locked_at').execute();
}
