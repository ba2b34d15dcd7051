import type { Route } from '../domain/serving.js';

/**
 * What the edge reads, as three small interfaces. The edge knows no SQL: the integrator backs these
 * with the store, tests with maps. Routes and certificates are read only on a cache miss (see
 * `loading-cache.ts`): the edge collapses concurrent reads of one name into one and caches both
 * answers and "not served" for a while, so an implementation may query the database directly.
 * Challenges are read on every `/.well-known/acme-challenge/` request and every `acme-tls/1`
 * handshake: the CA sends a handful.
 *
 * Contracts common to all three:
 * - Keys arrive normalized (`normalizeHostname`: lowercase, no trailing dot, A-labels), never with
 *   a port, so an implementation compares them as stored.
 * - Safe under concurrency: the edge calls them from many handshakes and requests at once.
 * - "Not served" / "unknown" is `undefined`, never a throw. A throw means the source could not
 *   answer (database down): the edge keeps serving what it already has, answers nothing new, logs.
 * - Changes are pushed with `Edge.invalidate(hostname)`; without it a change shows once the cached
 *   answer expires (`cacheTtlMs`, `negativeCacheTtlMs`).
 */

export interface RouteSource {
  /** The route for a hostname, or `undefined` when nothing is served there. */
  route(hostname: string): Promise<Route | undefined>;
}

/** A certificate chain and its key, as the edge hands them to TLS. */
export interface EdgeCertificate {
  /** The leaf first, then the intermediates (PEM, concatenated). */
  certificatePem: string;
  /** PEM (PKCS#8 or the key type's own form), decrypted. */
  privateKeyPem: string;
  /** The leaf's expiry: the edge never caches a certificate past it. */
  notAfter: Date;
  /** How long the edge may keep it before reading it again, in ms, when less than its usual lifetime. */
  maxAgeMs?: number;
}

export interface CertificateSource {
  /**
   * The certificate to present for a hostname (one of its SANs covers the name), else `undefined`.
   * The edge asks only for names that have a route (a certificate alone is enough for a TLS
   * handshake to succeed), so a certificate kept after its domain was removed is never presented;
   * for a name served by a customer's wildcard claim it asks for the claim's name (`*.acme.com`,
   * the route's `wildcard`), whose certificate is stored under it.
   */
  certificate(hostname: string): Promise<EdgeCertificate | undefined>;
}

/** The edge's half of a routing proof (domain/routing-proof.ts). */
export interface RoutingProofSource {
  /**
   * The proof for `nonce` of the live claim on `hostname`, or `undefined` when no claim on the name
   * is live. Read on every request for the proof path: the worker sends one per check.
   */
  proof(hostname: string, nonce: string): Promise<string | undefined>;
}

export interface ChallengeSource {
  /**
   * The key authorization (`{token}.{account key thumbprint}`) for a pending HTTP-01 challenge, or
   * `undefined` when the token is unknown or expired. Tokens are stored, not held in one process,
   * so any edge node can answer the CA.
   */
  keyAuthorization(token: string): Promise<string | undefined>;
  /**
   * The key authorization of a pending TLS-ALPN-01 challenge for `hostname`, or `undefined` when
   * there is none. Read on every handshake that offers the `acme-tls/1` protocol (the CA makes a
   * handful), so a removed answer is never presented again.
   */
  tlsAlpnKeyAuthorization(hostname: string): Promise<string | undefined>;
}

/**
 * What the edge answers from when its sources throw (the store unreachable): the node's snapshot
 * (src/snapshot/), a local file. Synchronous. A throw means it cannot answer either (no snapshot,
 * a damaged one, or one past its maximum age): the edge then keeps what it has cached and answers
 * nothing new, as without one. Names are normalized, as for the sources above.
 */
export interface FallbackSource {
  /** The route of a hostname, or `undefined` when nothing is served there. */
  route(hostname: string): Route | undefined;
  /** The certificate of a hostname that has a route, or `undefined`. */
  certificate(hostname: string): EdgeCertificate | undefined;
  /** Told each time the store answered: the edge is no longer serving from the fallback. */
  storeAnswered(): void;
}
