/**
 * The domain status machine (docs/architecture.md draws it). Pure functions only: callers load a
 * domain, ask here what may happen, and store the result in one transaction.
 *
 *   pending --verify--> verifying --TXT found--> verified --routing ok + certificate--> active
 *                           | deadline passed                                             |
 *                           v                                                             | records gone on re-check
 *                         failed --verify--> verifying                                    v
 *                                                                                        moved --verify--> verifying
 */
export const DOMAIN_STATUSES = ['pending', 'verifying', 'verified', 'active', 'failed', 'moved'] as const;
export type DomainStatus = (typeof DOMAIN_STATUSES)[number];

/** Statuses from which `verify` (re)starts polling; verified and active domains keep their status. */
const RESTARTABLE: ReadonlySet<DomainStatus> = new Set(['pending', 'verifying', 'failed', 'moved']);

/** What `POST .../verify` does to a domain in `status`: the status it moves to, or null to keep it. */
export function statusOnVerifyRequest(status: DomainStatus): 'verifying' | null {
  return RESTARTABLE.has(status) ? 'verifying' : null;
}

/** Statuses in which ownership has been proven (the claim is live). */
export function isProven(status: DomainStatus): boolean {
  return status === 'verified' || status === 'active';
}
