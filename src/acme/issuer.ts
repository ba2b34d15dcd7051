/**
 * Certificate issuers: how the worker gets a certificate for names whose ownership and routing are
 * proven, whichever CA signs it. `acme` (acme-issuer.ts) asks an ACME CA such as Let's Encrypt;
 * `internal` (internal-issuer.ts) signs with a local CA for development. Neither knows of HTTP
 * routes, SQL or domain statuses: the worker decides when to issue and stores what comes back.
 */

import type { RenewalInfo } from './ari.js';

export type IssuerKind = 'acme' | 'internal';

export interface IssuedCertificate {
  /**
   * PEM certificates, the leaf first, then the intermediates in order up to (not including) the
   * root: what a TLS server sends as it is.
   */
  certificatePem: string;
  /**
   * PEM (PKCS#8) private key of the leaf, made for this certificate alone. A secret: stored
   * encrypted, never logged, never sent through the API.
   */
  privateKeyPem: string;
  /** Validity, as read from the leaf. */
  notBefore: Date;
  notAfter: Date;
  issuer: IssuerKind;
  /** The ACME directory URL of the CA that issued it; absent for the local CA. */
  caDirectory?: string;
}

export interface IssueOptions {
  /**
   * Aborting cancels the requests in flight and rejects `issue()` with the signal's reason, once
   * what the issuance published (challenge answers) is cleaned up.
   */
  signal?: AbortSignal;
  /**
   * Where Portico answers DNS-01 for these names: the label of the claim's delegation in the
   * challenge zone (`_acme-challenge.{name}` is a CNAME to `{label}.{zone}`, checked in place by the
   * caller) and the claim the answers belong to. Without it, DNS-01 is not offered to the CA.
   */
  delegation?: { label: string; domainId: string | null };
  /**
   * The ARI identifier (RFC 9773) of the certificate this order replaces, sent as the new order's
   * `replaces`: the CA then knows the renewal was asked for by its renewal information, and Let's
   * Encrypt exempts it from its rate limits. Only given when the CA offers ARI.
   */
  replaces?: string;
  /**
   * The ACME directory of the CA that issued the certificate concerned (the one renewed, asked
   * about or revoked), where several are configured: ARI and revocation go to it, and `replaces`
   * only to it. The first CA when absent.
   */
  caDirectory?: string;
}

export interface CertIssuer {
  readonly kind: IssuerKind;
  /**
   * True when `issue()` takes a wildcard name, `*.{parent}`, without a `delegation` (the local CA):
   * what the platform's own wildcard needs. ACME needs the DNS-01 challenge for one, which Portico
   * answers only at a customer's delegation, so the ACME issuer takes a wildcard only with one.
   */
  readonly wildcards?: boolean;
  /**
   * A new certificate (and a new key) whose subject alternative names are exactly `hostnames`.
   *
   * Contract:
   * - `hostnames` are normalized: lowercase A-labels without a trailing dot, no IP addresses;
   *   wildcards (`*.` and a name of two labels or more) only where `wildcards` says so, or with a
   *   `delegation`; duplicates are ignored. Anything else fails as `rejected_identifier`.
   * - Callers ask only for names whose ownership and routing they have proven: issuers do not
   *   check DNS themselves (the CA does, for `acme`).
   * - Rejects with a `CertIssueError` for every failure (the CA, the network, the stores, the
   *   names), and with the signal's reason when aborted; nothing else is expected.
   * - Safe to call concurrently, from any number of processes sharing the same stores. Two calls
   *   for the same names make two certificates: keeping to one issuance per domain at a time is
   *   the caller's job (the job lease).
   */
  issue(hostnames: string[], options?: IssueOptions): Promise<IssuedCertificate>;
  /**
   * Checks, before an order is placed for `hostnames`, what would make the CA refuse it for a
   * reason of the customer's that Portico can see first: CAA records (RFC 8659) forbidding this CA.
   * Rejects with a `CertIssueError` (`caa_forbidden`, or the retryable `caa_lookup_failed` when DNS
   * does not answer); resolves when an order may be placed. Absent: nothing to check (the local CA).
   */
  precheck?(hostnames: string[], options?: IssueOptions): Promise<void>;
  /**
   * Revokes a certificate this issuer issued (RFC 8555 section 7.6), giving `reason`; one already
   * revoked counts as done. Rejects with a `CertIssueError` (retryable or not, as for issuance).
   * Absent: the issuer has nothing to revoke (the local CA, which no client outside trusts).
   */
  revoke?(certificatePem: string, reason: RevocationReason, options?: IssueOptions): Promise<void>;
  /**
   * The CA's renewal window for a certificate it issued (ACME Renewal Information, RFC 9773), or
   * undefined when the CA offers none (its directory has no `renewalInfo`). Rejects with a
   * `CertIssueError` when the CA does not answer. Absent: the issuer has no such thing (the local CA).
   */
  renewalInfo?(certificatePem: string, options?: IssueOptions): Promise<RenewalInfo | undefined>;
}

/**
 * Why a certificate is revoked, as RFC 5280 (section 5.3.1) names the reasons an ACME client may
 * give: `cessationOfOperation` (5) when its name is no longer served (removed, or its ownership
 * lost), `superseded` (4) when another claim took the name over and gets a certificate of its own.
 */
export type RevocationReason = 'cessationOfOperation' | 'superseded';
export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, 4 | 5>> = {
  superseded: 4,
  cessationOfOperation: 5,
};

/**
 * The ACME challenge types Portico can answer (RFC 8555 section 8.3, RFC 8737), as the CA names them.
 * - `http-01`: the CA fetches `http://{name}/.well-known/acme-challenge/{token}` (port 80): the
 *   edge's HTTP listener answers.
 * - `tls-alpn-01`: the CA opens a TLS connection to `{name}:443` offering the ALPN protocol
 *   `acme-tls/1` and checks a self-signed certificate carrying the key authorization's digest:
 *   the edge's HTTPS listener answers. For platforms where port 80 does not reach the edge.
 */
export const ACME_CHALLENGE_TYPES = ['http-01', 'tls-alpn-01', 'dns-01'] as const;
export type AcmeChallengeType = (typeof ACME_CHALLENGE_TYPES)[number];

/**
 * Where key authorizations live while the CA validates: in the shared store, so whichever edge node
 * the CA reaches can answer. One key space for both challenge types:
 * - HTTP-01 answers are keyed by their token: the CA's request names it.
 * - TLS-ALPN-01 answers are keyed by `tlsAlpnChallengeKey(hostname)`: the CA's handshake names only
 *   the host (SNI). Tokens are base64url (RFC 8555 section 8.3) and never contain the `:` of these
 *   keys, and the edge serves only well-formed tokens over HTTP, so neither kind can be read as the
 *   other.
 */
export interface ChallengeStore {
  /**
   * Stores (or replaces) the answer under `key`. Once it resolves, every edge node answers with it:
   * the CA may connect right after.
   */
  put(key: string, keyAuthorization: string): Promise<void>;
  /** Forgets `key`; removing a key that is not there is not an error. */
  remove(key: string): Promise<void>;
}

/**
 * The `ChallengeStore` key of the TLS-ALPN-01 answer for `hostname` (normalized). One answer per
 * name at a time: a TLS handshake can present one certificate only, so two issuances for the same
 * name at once would replace each other's answer (the job lease keeps to one).
 */
export function tlsAlpnChallengeKey(hostname: string): string {
  return `tls-alpn-01:${hostname}`;
}

/**
 * The ACME account key (PEM), one for the whole deployment: every node acts for the same account,
 * so the CA's per-account limits and the contact address apply once. A secret, like certificate
 * keys.
 */
export interface AccountKeyStore {
  /** The stored key, or undefined when none has been stored yet. */
  get(): Promise<string | undefined>;
  /**
   * Stores `privateKeyPem` unless a key is already stored, atomically, and answers the key that is
   * stored afterwards: the given one, or the one a concurrent node stored first.
   */
  putIfAbsent(privateKeyPem: string): Promise<string>;
}

/** Why an issuance failed, as a stable code. */
export type CertIssueErrorCode =
  | 'rate_limited'
  | 'bad_nonce'
  | 'network'
  | 'server_error'
  | 'timeout'
  | 'caa_forbidden'
  | 'caa_lookup_failed'
  | 'challenge_failed'
  | 'unauthorized'
  | 'dns_problem'
  | 'rejected_identifier'
  | 'unknown';

/**
 * Whether trying again, unchanged, can succeed: retryable failures are retried on a backoff;
 * the others wait for someone to change something (usually the customer's DNS), because retrying
 * them only spends the CA's failed-validation allowance (Let's Encrypt: 5 per name and hour).
 */
export const RETRYABLE: Readonly<Record<CertIssueErrorCode, boolean>> = {
  // The CA said no for now; `retryAfterSeconds` says when, if it told.
  rate_limited: true,
  // The CA rejected anti-replay nonces even after acme-client's own retries: transient by nature.
  bad_nonce: true,
  // The ACME server could not be reached or did not answer in time.
  network: true,
  // The CA failed on its side (5xx, serverInternal).
  server_error: true,
  // The CA did not finish validating or issuing in the time allowed.
  timeout: true,
  // A CAA record forbids this CA: the customer must change it.
  caa_forbidden: false,
  // DNS did not answer for the CAA records (SERVFAIL, a timeout): no permission, but no refusal
  // either; a resolver's trouble usually passes within minutes.
  caa_lookup_failed: true,
  // The CA could not connect to the name (wrong address, nothing listening, TLS failure).
  challenge_failed: false,
  // The CA connected but got the wrong answer: the name points somewhere other than the edge.
  unauthorized: false,
  // The CA's DNS lookup of the name failed (NXDOMAIN, SERVFAIL, no address).
  dns_problem: false,
  // The CA (or Portico) will not issue for this name at all.
  rejected_identifier: false,
  // Unclassified: retried, because a renewal that gives up on an unknown error lets a certificate
  // expire, and the backoff bounds what retrying costs.
  unknown: true,
};

export interface CertIssueErrorDetails {
  /** Seconds the CA asked to wait before trying again (HTTP Retry-After). */
  retryAfterSeconds?: number;
  /** The name the failure is about, when it concerns one name of several. */
  hostname?: string;
  /** The ACME problem type the CA answered, e.g. `urn:ietf:params:acme:error:caa`. */
  problemType?: string;
  cause?: unknown;
}

/** An issuance failure; the message says in plain words what went wrong and what to fix. */
export class CertIssueError extends Error {
  readonly retryable: boolean;
  readonly retryAfterSeconds?: number;
  readonly hostname?: string;
  readonly problemType?: string;

  constructor(
    readonly code: CertIssueErrorCode,
    message: string,
    details: CertIssueErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CertIssueError';
    this.retryable = RETRYABLE[code];
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.hostname = details.hostname;
    this.problemType = details.problemType;
  }
}

// LDH labels of 1-63 characters, at least two of them, 253 characters in all.
const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;
const ALL_DIGITS_AND_DOTS = /^[0-9.]+$/;

/**
 * The names of `issue(hostnames)`, deduplicated in order, after checking they are normalized
 * hostnames (see `CertIssuer.issue`). Both issuers put them into certificates, the internal one
 * into a distinguished name too, so nothing else may pass.
 */
export function checkHostnames(
  hostnames: readonly string[],
  options: { wildcards?: boolean } = {},
): string[] {
  if (hostnames.length === 0) {
    throw new CertIssueError('rejected_identifier', 'A certificate needs at least one hostname.');
  }
  for (const name of hostnames) {
    // A wildcard's parent must be a hostname itself, of two labels at least: no `*.com`.
    const wildcard = options.wildcards === true && name.startsWith('*.');
    const host = wildcard ? name.slice(2) : name;
    if (!HOSTNAME.test(host) || ALL_DIGITS_AND_DOTS.test(host)) {
      throw new CertIssueError(
        'rejected_identifier',
        `"${name}" is not a hostname a certificate can be issued for: expected a lowercase name such ` +
          'as "shop.example.com" (letters, digits and hyphens in dot-separated labels, punycode for Unicode).',
        { hostname: name },
      );
    }
  }
  return [...new Set(hostnames)];
}
