/**
 * The timing of the renewal loop, as pure functions (CertMagic keeps the same rules in
 * `maintain.go` and `async.go`): when a certificate is renewed, and how long a failed order waits
 * before the next try. `certificates.ts` applies them. A renewal that fails leaves the current
 * certificate served, so these waits spend the lifetime left on it, never a moment of outage.
 */

/**
 * When to renew: once `fraction` of the lifetime is left (`PORTICO_CERT_RENEW_PERCENT`, a third by
 * default, as CertMagic and Let's Encrypt advise). A third of a 90-day certificate is 30 days: room
 * for weeks of trouble at the CA or in the customer's DNS, retried at the capped interval below
 * (some 120 tries), and for the expiry alert (`expiryAlertTime`) to reach a person while the old
 * certificate is still valid. Relative to the lifetime, so short-lived certificates (Let's
 * Encrypt's 6-day ones) renew early enough too.
 */
export function renewalTime(notBefore: Date, notAfter: Date, fraction: number): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime * fraction);
}

/**
 * A certificate with less than this fraction of its lifetime left, and no renewal yet, is announced
 * (`certificate.expiring`) and counted by the metrics' alert examples. Relative, not a number of
 * days, so it means the same for a 90-day and a 6-day certificate: renewal starts with a third
 * left, so by a sixth half the renewal window has passed in failures, and what is left (15 days of
 * a 90-day certificate, 24 hours of a 6-day one) is the time a person has to act before visitors
 * see an expired certificate.
 */
export const EXPIRY_ALERT_FRACTION = 1 / 6;

/** When a certificate valid from `notBefore` to `notAfter` has `EXPIRY_ALERT_FRACTION` of its lifetime left. */
export function expiryAlertTime(notBefore: Date, notAfter: Date): Date {
  return renewalTime(notBefore, notAfter, EXPIRY_ALERT_FRACTION);
}

/**
 * After a failed order, how long until the next, by failures so far. Which failures are retryable
 * is `RETRYABLE` in issuer.ts. The waits grow quickly at first, as CertMagic's `retryIntervals`
 * do: a blip clears in seconds, anything that outlasts a few minutes needs the CA's operators, DNS
 * caches or a person, and trying faster then only spends orders of the account's hourly budget
 * (`PORTICO_ISSUANCE_RATE_PER_HOUR`) that other domains need.
 *
 * Retryable: the CA or the network failed (5xx, a timeout, a reset connection, a rate limit).
 *
 *   failures  wait    why
 *   1         1 min   most blips (a dropped connection, a 503 while the CA deploys, a stale nonce)
 *                     are gone within a minute, and a new domain's customer is waiting for it
 *   2         5 min   past a blip, a short outage: a CA node restarting or failing over, a network
 *                     path converging again, which take minutes
 *   3         15 min  an incident at the CA or on the way to it, which its operators need tens of
 *                     minutes to end
 *   4         1 h     four tries in the first hour at most, under Let's Encrypt's limit of 5 failed
 *                     authorizations per name and hour
 *   5         3 h     an outage of hours (CA maintenance); a renewal still has weeks left
 *   6+        6 h     the cap: four tries a day pick up the CA's recovery within hours, with nobody
 *                     acting, and never give up (a renewal that stops lets a certificate expire)
 *
 * Permanent: only the customer can fix it (a CAA record forbids the CA, the CA could not reach the
 * name or got another server's answer, its DNS lookup failed). Meanwhile the DNS re-verification
 * keeps the domain's `verification_errors` current, telling them what to change.
 *
 *   failures  wait    why
 *   1         1 h     a DNS edit needs a person, then propagation; sooner would fail the same way
 *                     and count against the CA's failed-authorization limit (5 per name and hour)
 *   2         3 h     a customer who has not acted within the hour is unlikely to within minutes
 *   3         6 h
 *   4         12 h
 *   5+        24 h    the cap: a fix made later, even days later, is picked up within a day
 *
 * A Retry-After from the CA is honoured whenever it asks for longer: it knows its own limits.
 */
const RETRYABLE_BACKOFF_SECONDS = [60, 5 * 60, 15 * 60, 3600, 3 * 3600, 6 * 3600];
const PERMANENT_BACKOFF_SECONDS = [3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600];

/** Seconds until the next try after `failures` failed orders in a row (1 for the first). */
export function issueRetrySeconds(failures: number, retryable: boolean, retryAfterSeconds = 0): number {
  const table = retryable ? RETRYABLE_BACKOFF_SECONDS : PERMANENT_BACKOFF_SECONDS;
  const wait = table[Math.min(failures, table.length) - 1] ?? (table.at(-1) as number);
  return Math.max(wait, retryAfterSeconds);
}
