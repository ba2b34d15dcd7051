import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  // How many apps each organization has, kept beside it like `domain_count`: the quota check is one
  // conditional update, which concurrent creates cannot pass together.
  await db.schema
    .alterTable('organizations')
    .addColumn('app_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update organizations set app_count = (select count(*) from apps where apps.org_id = organizations.id)`.execute(
    db,
  );

  // Whose budget an order was placed on: the organization of the domain, or null for the platform's
  // own names (apps' default hostnames, the apps domain's wildcard). Orders placed before this
  // migration count as the platform's; they leave the hourly window within the hour.
  await db.schema.alterTable('certificate_orders').addColumn('org_id', 'text').execute();
  await db.schema
    .createIndex('certificate_orders_org_created')
    .on('certificate_orders')
    .columns(['org_id', 'created_at'])
    .execute();

  // Slugs freed by a deleted or renamed app, held for their organization until `held_until`, so
  // another organization cannot take over a hostname that cookies, bookmarks and links still name.
  await db.schema
    .createTable('slug_holds')
    .addColumn('slug', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('held_until', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
