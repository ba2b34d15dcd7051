import { normalizeHostname } from '../domain/hostname.js';
import type { EdgeRoute } from './sources.js';

/**
 * What the edge does with a request, decided from the request and its route alone. Pure: no I/O.
 *
 * Two steps, so that nothing is looked up for a request that can be answered without its route
 * (a misdirected request, an ACME challenge):
 * 1. `beforeRoute` answers what it can, or names the hostname whose route decides;
 * 2. the caller looks that route up and `decide` answers the rest.
 */

export type Scheme = 'http' | 'https';

export type RejectReason =
  /** The request target is not a path (absolute-form or `*`): nothing here asks for those. */
  | 'bad-request-target'
  /** No route for the name, or no Host at all. */
  | 'unknown-host'
  /** HTTPS with a Host other than the SNI name the connection was made for (RFC 9110 §15.5.20). */
  | 'misdirected'
  /** Served, but the App has no `origin_url`. */
  | 'no-origin'
  /** An ACME challenge path that is not a well-formed token. */
  | 'bad-challenge-token';

export type EdgeDecision =
  /** Reverse-proxy to the route's origin. */
  | { readonly action: 'proxy' }
  /** 308 Permanent Redirect: method and body are kept, unlike 301. */
  | { readonly action: 'redirect'; readonly location: string }
  /** Answer with the token's key authorization (`text/plain`), or 404 when it is unknown. */
  | { readonly action: 'challenge'; readonly token: string }
  /** A neutral page that names no tenant. */
  | { readonly action: 'reject'; readonly status: 400 | 404 | 421 | 502; readonly reason: RejectReason };

const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** ACME tokens are base64url without padding (RFC 8555 §8.3). */
const ACME_TOKEN = /^[A-Za-z0-9_-]+$/;
const SLASH = 0x2f;
const OPEN_BRACKET = 0x5b;

// Decisions without data are shared constants: deciding allocates only for redirects and challenges.
const PROXY: EdgeDecision = { action: 'proxy' };
const BAD_REQUEST_TARGET: EdgeDecision = { action: 'reject', status: 400, reason: 'bad-request-target' };
const UNKNOWN_HOST: EdgeDecision = { action: 'reject', status: 404, reason: 'unknown-host' };
const MISDIRECTED: EdgeDecision = { action: 'reject', status: 421, reason: 'misdirected' };
const NO_ORIGIN: EdgeDecision = { action: 'reject', status: 502, reason: 'no-origin' };
const BAD_CHALLENGE_TOKEN: EdgeDecision = { action: 'reject', status: 404, reason: 'bad-challenge-token' };

/**
 * The hostname a Host header names: without its port, normalized as everywhere else
 * (`normalizeHostname`); `undefined` when the header is missing or empty. An IPv6 literal
 * (`[::1]:8443`) comes back without brackets; it is never served.
 */
export function hostnameOf(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  let name = host;
  if (host.charCodeAt(0) === OPEN_BRACKET) {
    const end = host.indexOf(']');
    if (end !== -1) name = host.slice(1, end);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) name = host.slice(0, colon);
  }
  name = normalizeHostname(name);
  return name === '' ? undefined : name;
}

/**
 * Step 1. `hostname` is `hostnameOf(Host)` or, for an HTTPS request without a Host header
 * (HTTP/1.0), the SNI name; `servername` is the connection's normalized SNI name (HTTPS only);
 * `target` the request target as received (path and query). Returns a decision, or the hostname
 * whose route decides the rest (`decide`).
 */
export function beforeRoute(
  scheme: Scheme,
  hostname: string | undefined,
  servername: string | undefined,
  target: string,
): EdgeDecision | string {
  if (target.charCodeAt(0) !== SLASH) return BAD_REQUEST_TARGET;
  if (scheme === 'http' && target.startsWith(ACME_CHALLENGE_PATH)) {
    // Answered whatever the Host: the domain being validated is not served yet, so it has no route.
    const query = target.indexOf('?');
    const token = target.slice(ACME_CHALLENGE_PATH.length, query === -1 ? undefined : query);
    return ACME_TOKEN.test(token) ? { action: 'challenge', token } : BAD_CHALLENGE_TOKEN;
  }
  if (hostname === undefined) return UNKNOWN_HOST;
  // The handshake was made for the SNI name, not the Host: another tenant's name on this connection
  // is answered 421, which also tells a client that reused the connection to open a new one.
  if (scheme === 'https' && hostname !== servername) return MISDIRECTED;
  return hostname;
}

/**
 * Step 2, for the hostname `beforeRoute` returned and that name's route (`undefined`: not served).
 * `httpsPort` is the port clients reach HTTPS on: it appears in a Location unless it is 443.
 */
export function decide(
  scheme: Scheme,
  hostname: string,
  target: string,
  route: EdgeRoute | undefined,
  httpsPort: number,
): EdgeDecision {
  if (route === undefined) return UNKNOWN_HOST;
  if (scheme === 'http') return { action: 'redirect', location: httpsUrl(hostname, httpsPort, target) };
  // A route that redirects to its own name would loop: serve it instead.
  if (route.redirectTo !== undefined && route.redirectTo !== hostname) {
    return { action: 'redirect', location: httpsUrl(route.redirectTo, httpsPort, target) };
  }
  return route.originUrl === null ? NO_ORIGIN : PROXY;
}

export function httpsUrl(hostname: string, port: number, target: string): string {
  return port === 443 ? `https://${hostname}${target}` : `https://${hostname}:${port}${target}`;
}
