import type { Kysely } from 'kysely';

/**
 * What the end of a certificate's life needs (issue 16):
 * - `certificates.last_error_code`: the stable code of the last failed attempt beside its message
 *   (`caa_forbidden` when a CAA record forbids the CA), so clients can act on it without parsing.
 * - `certificates.expiry_alerted_at`: `certificate.expiring` was announced for this certificate
 *   (less than a sixth of its lifetime left, no renewal yet), so it is announced once. A renewal
 *   replaces the row and clears it.
 * - `certificate_revocations`: the certificate of a name that was removed or moved, kept (its key
 *   still sealed) until the CA has revoked it or revoking was given up; a `cert:revoke` job each.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations describe the schema at their own point in history
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('certificates').addColumn('last_error_code', 'text').execute();
  await db.schema.alterTable('certificates').addColumn('expiry_alerted_at', 'text').execute();
  await db.schema
    .createTable('certificate_revocations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('hostname', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text')
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    /** AES-256-GCM ciphertext of the PEM key (secrets/secret-box.ts), as `certificates` kept it. */
    .addColumn('private_key_enc', 'text')
    /** RFC 5280's name of the reason: `cessationOfOperation` or `superseded`. */
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text')
    .addColumn('not_after', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
