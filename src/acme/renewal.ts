/**
 * The timing of the renewal loop, as pure functions (CertMagic keeps the same rules in
 * `maintain.go` and `async.go`): when a certificate is renewed, and how long a failed order waits
 * before the next try. `certificates.ts` applies them. A renewal that fails leaves the current
 * certificate served, so these waits spend the lifetime left on it, never a moment of outage.
 */

/** A source of random numbers in [0, 1), injected so the spread is testable (`Math.random` in service). */
export type RandomSource = () => number;

/** Below this lifetime a certificate renews at half its lifetime (Let's Encrypt's 6-day `shortlived`). */
export const SHORT_LIFETIME_MS = 10 * 86_400_000;

/** The share of the lifetime the renewal moments of a batch are spread over (see `renewalTime`). */
export const RENEWAL_JITTER_FRACTION = 1 / 10;

/**
 * When to renew, without ARI (RFC 9773 `renewalInfo`, `ariRenewalTime` otherwise): once `fraction`
 * of the lifetime is left (`PORTICO_CERT_RENEW_PERCENT`, 33: at two thirds of the lifetime, as
 * CertMagic and Let's Encrypt advise), or half of it when the certificate lives less than 10 days:
 * a third of a 6-day certificate is 48 hours, too little to ride out a CA outage of a day and still
 * have the expiry alert (`expiryAlertTime`) reach a person.
 *
 * The moment is spread at random over the tenth of the lifetime before that point (`random`, an
 * injected source): certificates issued together (a bulk import, a migration) would otherwise
 * renew together, as a herd that spends the hourly order budget and the CA's rate limits at once.
 * Spread before, never after, the nominal point: no certificate renews later than the rule says.
 * Relative to the lifetime, so 90-day, 45-day and 6-day certificates all get the same margins.
 */
export function renewalTime(
  notBefore: Date,
  notAfter: Date,
  fraction: number,
  random: RandomSource = Math.random,
): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const left = lifetime < SHORT_LIFETIME_MS ? Math.max(fraction, 1 / 2) : fraction;
  const jitter = Math.min(Math.max(random(), 0), 1) * lifetime * RENEWAL_JITTER_FRACTION;
  return new Date(Math.max(notBefore.getTime(), notAfter.getTime() - lifetime * left - jitter));
}

/** The moment `fraction` of the lifetime is left, with no spread. */
function fractionLeftTime(notBefore: Date, notAfter: Date, fraction: number): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime * fraction);
}

/** A renewal window a CA suggests (RFC 9773 section 4.2, `suggestedWindow`). */
export interface RenewalWindow {
  start: Date;
  end: Date;
}

/**
 * When to renew inside the CA's suggested window (RFC 9773 section 4.2): a moment picked uniformly
 * at random in it, so a CA that gives many certificates the same window gets their orders spread
 * over it. A moment picked earlier (`previous`) is kept while it still lies in the window, so each
 * poll does not draw again (which would pull the orders towards the window's start). A window
 * that ends in the past (the CA revoked the certificate, or asks for its replacement after an
 * incident) gives `now`: renew at once.
 */
export function ariRenewalTime(
  window: RenewalWindow,
  now: Date,
  random: RandomSource = Math.random,
  previous?: Date,
): Date {
  const [start, end] = [window.start.getTime(), window.end.getTime()];
  if (end <= now.getTime()) return now;
  if (previous !== undefined && previous.getTime() >= start && previous.getTime() <= end) return previous;
  return new Date(start + Math.min(Math.max(random(), 0), 1) * Math.max(0, end - start));
}

/**
 * How long until the renewal information is asked for again (RFC 9773 section 4.3): the CA's
 * Retry-After, kept between a minute (a CA asking for less would have every worker poll it in a
 * loop) and a day (a window moved by a revocation must be seen within one); six hours when the
 * CA does not say, as Let's Encrypt advises.
 */
export function ariPollSeconds(retryAfterSeconds: number | undefined): number {
  if (retryAfterSeconds === undefined) return 6 * 3600;
  return Math.min(Math.max(retryAfterSeconds, 60), 24 * 3600);
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
  return fractionLeftTime(notBefore, notAfter, EXPIRY_ALERT_FRACTION);
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
