import type { Kysely } from 'kysely';

/**
 * Idempotency-Key answers are kept sealed from now on (api/idempotency.ts): a webhook's creation
 * answer holds its signing secret. Answers kept before were plain JSON, and some hold a secret for
 * up to 24 hours more: they are deleted rather than left to expire. A client retrying one of those
 * requests after the upgrade runs it again, as it would with a key older than 24 hours.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('response_body', 'is not', null)
    // A sealed value starts with its scheme's version (SecretBox: `v1.…`); a JSON answer with `{`.
    .where('response_body', 'not like', 'v1.%')
    .execute();
}
