import { type Kysely, sql } from 'kysely';

/**
 * Exactly one live claim per name (docs/security.md, threat 2), held by the database itself: a
 * partial unique index on the names of `verified` and `active` claims (the live statuses,
 * `isLive` in src/domain/lifecycle.ts, written out here as they were when this ran;
 * src/domain/lifecycle.test.ts checks that the two still agree). Before it, two organizations
 * proving the same name at once on PostgreSQL could both stay live, and the edge then served
 * either one.
 *
 * A database where that happened keeps, per name, the claim whose proof is the most recent (the
 * hand-over's rule; the id breaks a tie) and marks the others `moved`, as a hand-over would have.
 * No `domain.moved` webhook is sent for them: a migration has no event machinery.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    update domains set status = 'moved', next_check_at = null
    where status in ('verified', 'active') and exists (
      select 1 from domains newer
      where newer.name = domains.name
        and newer.status in ('verified', 'active')
        and (coalesce(newer.verified_at, '') > coalesce(domains.verified_at, '')
          or (coalesce(newer.verified_at, '') = coalesce(domains.verified_at, '') and newer.id > domains.id)))
  `.execute(db);
  await db.schema
    .createIndex('domains_one_live_claim')
    .on('domains')
    .column('name')
    .unique()
    .where(sql.ref('status'), 'in', sql`('verified', 'active')`)
    .execute();
}
