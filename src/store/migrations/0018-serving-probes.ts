import type { Kysely } from 'kysely';

/**
 * `domains.serving`: the last serving probe's report (issue 17), JSON `{checkedAt, ok, edges}`, or
 * NULL when none ran. Existing active domains get their `domain:probe` jobs from the first worker
 * that starts (ServingProbes.scheduleMissing), at their slots of whatever interval it runs with,
 * rather than here, where the interval is not known.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('domains').addColumn('serving', 'text').execute();
}
