import type { Kysely } from 'kysely';

/**
 * ACME Renewal Information and several CAs (issue 16):
 * - `certificates.ari_window_start` / `ari_window_end`: the renewal window the CA suggested for
 *   the certificate served now (RFC 9773); null when the CA has no ARI or has not been asked yet.
 *   `renew_at` holds the moment picked in it.
 * - `certificates.ari_next_poll_at`: when to ask the CA again (its Retry-After, bounded).
 * - `certificates.ca_directory`: the ACME directory of the CA that issued it (null for the local
 *   CA), so renewals ask that CA's ARI and revocations go to it, and the API says who issued it.
 * - `certificate_revocations.ca_directory`: the same, kept for the revocation, which only the CA
 *   (and the account) that issued a certificate can do.
 * A renewal replaces the row and clears the window.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('certificates').addColumn('ari_window_start', 'text').execute();
  await db.schema.alterTable('certificates').addColumn('ari_window_end', 'text').execute();
  await db.schema.alterTable('certificates').addColumn('ari_next_poll_at', 'text').execute();
  await db.schema.alterTable('certificates').addColumn('ca_directory', 'text').execute();
  await db.schema.alterTable('certificate_revocations').addColumn('ca_directory', 'text').execute();
}
