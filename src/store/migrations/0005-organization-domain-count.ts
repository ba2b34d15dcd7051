import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  // How many domains each organization holds, kept beside it: the quota check is then one
  // conditional update instead of counting the organization's domains on every add.
  await db.schema
    .alterTable('organizations')
    .addColumn('domain_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update organizations set domain_count = (select count(*) from domains where domains.org_id = organizations.id)`.execute(
    db,
  );
}
