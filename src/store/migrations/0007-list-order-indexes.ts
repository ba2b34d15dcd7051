import type { Kysely } from 'kysely';

/**
 * Every list endpoint pages in creation order with `id` breaking ties (listPage in
 * sql/context.ts). The indexes the lists filter by ended at `created_at` (or at the filter
 * column), so SQLite sorted each page's ties in a temporary B-tree: about a fifth of the time of a
 * page of an app's domains. Each index below ends with the whole sort key instead; it replaces the
 * index it extends, so writes keep the same number of indexes.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  const extend = async (table: string, oldIndex: string, newIndex: string, filter: string) => {
    await db.schema.createIndex(newIndex).on(table).columns([filter, 'created_at', 'id']).execute();
    await db.schema.dropIndex(oldIndex).execute();
  };
  await extend('domains', 'domains_app_created', 'domains_app_created_id', 'app_id');
  await extend('webhooks', 'webhooks_org', 'webhooks_org_created_id', 'org_id');
  await extend(
    'webhook_deliveries',
    'webhook_deliveries_webhook_created',
    'webhook_deliveries_webhook_created_id',
    'webhook_id',
  );
}
