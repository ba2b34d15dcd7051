import type { Kysely } from 'kysely';

/**
 * How a domain's traffic was last seen to reach the platform (`routing.via` in the API): `dns` (its
 * CNAME or addresses), `proxy` (an HTTP request through the customer's own proxy or CDN reached the
 * edge, domain/routing-proof.ts), or NULL (not seen, or never checked). Kept so a change can be
 * announced (`domain.routing_changed`) rather than acted on: routing no longer counts toward `moved`.
 *
 * Active domains held their routing on their last check unless they were counting failures; they
 * start as `dns`, so the first check after the upgrade announces nothing that did not change.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('domains').addColumn('routing_via', 'text').execute();
  await db
    .updateTable('domains')
    .set({ routing_via: 'dns' })
    .where('status', '=', 'active')
    .where('failure_streak', '=', 0)
    .execute();
}
