import { type Kysely, sql } from 'kysely';

/**
 * Which organization a job works for, so workers claim fairly across organizations (the claim in
 * sql/jobs.ts) and one tenant's backlog of slow jobs delays only that tenant. '' is the platform's
 * own work, grouped as one more tenant (not NULL: the claim joins on it, and NULL equals nothing).
 *
 * Jobs queued before this migration get their organization from what they work on; every key is
 * `{kind}:{subject}` (a domain id, a delivery id, a hostname).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('jobs')
    .addColumn('org_id', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  const subject = sql`substr(jobs.key, length(jobs.kind) + 2)`;
  const backfill = async (kinds: string[], orgOfSubject: ReturnType<typeof sql>) => {
    await sql`update jobs set org_id = coalesce((${orgOfSubject}), '')
      where kind in (${sql.join(kinds)})`.execute(db);
  };
  await backfill(
    ['domain:verify', 'domain:reverify'],
    sql`select org_id from domains where domains.id = ${subject}`,
  );
  await backfill(
    ['webhook:deliver'],
    sql`select webhooks.org_id from webhook_deliveries
      join webhooks on webhooks.id = webhook_deliveries.webhook_id
      where webhook_deliveries.id = ${subject}`,
  );
  // A certificate is its domain's organization's, or for an app's default hostname its app's.
  await backfill(
    ['cert:issue', 'cert:renew'],
    sql`select coalesce(domains.org_id, apps.org_id) from certificates
      left join domains on domains.id = certificates.domain_id
      left join apps on apps.id = certificates.app_id
      where certificates.hostname = ${subject}`,
  );

  // The claim reads each organization's due jobs of a kind in order, from an index that holds the
  // waiting jobs only. It replaces `jobs_due` (run_at, id), which the claim never used.
  await db.schema
    .createIndex('jobs_queue')
    .on('jobs')
    .columns(['kind', 'org_id', 'run_at', 'id'])
    .where(sql.ref('locked_at'), 'is', null)
    .execute();
  await db.schema.dropIndex('jobs_due').execute();
  // Running jobs only: the claim counts them per organization, the sweep looks for stale ones. As
  // a full index it also offered `locked_at IS NULL` lookups, which SQLite then preferred to
  // `jobs_queue` for the claim, reading every waiting job in a temporary B-tree.
  await db.schema.dropIndex('jobs_locked_at').execute();
  await db.schema
    .createIndex('jobs_locked_at')
    .on('jobs')
    .column('locked_at')
    .where(sql.ref('locked_at'), 'is not', null)
    .execute();
}
