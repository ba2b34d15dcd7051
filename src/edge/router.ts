import { isIPv6 } from 'node:net';
import { normalizeHostname } from '../domain/hostname.js';
import { isRoutingProofNonce, ROUTING_PROOF_PATH } from '../domain/routing-proof.js';
import { httpsUrl, type Route } from '../domain/serving.js';

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
  /** A Host header that is not a hostname with an optional port, or more than one Host header. */
  | 'bad-host'
  /** No route for the name, or no Host at all. */
  | 'unknown-host'
  /** HTTPS with a Host other than the SNI name the connection was made for (RFC 9110 §15.5.20). */
  | 'misdirected'
  /** Served, but the App has no `origin_url`. */
  | 'no-origin'
  /** An ACME challenge path that is not a well-formed token. */
  | 'bad-challenge-token'
  /** A routing-proof path whose nonce is not well formed. */
  | 'bad-proof-nonce';

export type EdgeDecision =
  /** Reverse-proxy to the route's origin. */
  | { readonly action: 'proxy' }
  /** 308 Permanent Redirect: method and body are kept, unlike 301. */
  | { readonly action: 'redirect'; readonly location: string }
  /** Answer with the token's key authorization (`text/plain`), or 404 when it is unknown. */
  | { readonly action: 'challenge'; readonly token: string }
  /** Answer with the proof that requests for `hostname` reach this edge (domain/routing-proof.ts), or 404. */
  | { readonly action: 'routing-proof'; readonly hostname: string; readonly nonce: string }
  /** A neutral page that names no tenant. */
  | { readonly action: 'reject'; readonly status: 400 | 404 | 421 | 502; readonly reason: RejectReason };

const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** ACME tokens are base64url without padding (RFC 8555 §8.3). */
const ACME_TOKEN = /^[A-Za-z0-9_-]+$/;
const SLASH = 0x2f;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;

// Decisions without data are shared constants: deciding allocates only for redirects and challenges.
const PROXY: EdgeDecision = { action: 'proxy' };
const BAD_REQUEST_TARGET: EdgeDecision = { action: 'reject', status: 400, reason: 'bad-request-target' };
const BAD_HOST: EdgeDecision = { action: 'reject', status: 400, reason: 'bad-host' };
const UNKNOWN_HOST: EdgeDecision = { action: 'reject', status: 404, reason: 'unknown-host' };
const MISDIRECTED: EdgeDecision = { action: 'reject', status: 421, reason: 'misdirected' };
const NO_ORIGIN: EdgeDecision = { action: 'reject', status: 502, reason: 'no-origin' };
const BAD_CHALLENGE_TOKEN: EdgeDecision = { action: 'reject', status: 404, reason: 'bad-challenge-token' };
const BAD_PROOF_NONCE: EdgeDecision = { action: 'reject', status: 404, reason: 'bad-proof-nonce' };

/** A Host header's hostname (normalized) and port, as checked by `parseHost`. */
export interface Authority {
  readonly hostname: string;
  /** `undefined` when the Host header had none. */
  readonly port: number | undefined;
}

/** What `parseHost` found: an authority, no Host (absent or empty), or one that is refused. */
export type ParsedHost = Authority | 'none' | 'invalid';

/** A DNS name (RFC 1123 labels: letters, digits, inner hyphens; 63 per label, 253 in all), or IPv4. */
const HOSTNAME =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * The Host header of a request, from Node's `rawHeaders` (where a repeated header is still
 * repeated: `req.headers` keeps only the first Host). Refused (`'invalid'`): more than one Host
 * header, a name that is not a hostname or an IP literal once normalized (`normalizeHostname`:
 * lowercase, no trailing dot, A-labels), a port that is not 1 to 65535 in digits, anything else
 * (`shop.example.com:@evil.com`, userinfo, a path, spaces). The name comes back normalized, an IPv6
 * literal without its brackets (it is never served).
 */
export function parseHost(rawHeaders: readonly string[]): ParsedHost {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue;
    if (value !== undefined) return 'invalid';
    value = rawHeaders[i + 1] as string;
  }
  return parseHostValue(value);
}

/**
 * `parseHost` for an HTTP/2 request, whose authority is its `:authority` pseudo-header, or its Host
 * header when it has none (RFC 9113 §8.3.1). Each is checked as a Host header is. Refused besides:
 * a second Host, and a Host that names another host or port than `:authority` (which RFC 9113
 * lets a server treat as malformed; forwarding one and routing by the other is how a request
 * smuggles a name past a check), and an empty `:authority`.
 */
export function parseAuthority(rawHeaders: readonly string[]): ParsedHost {
  let authority: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name === ':authority') {
      if (authority !== undefined) return 'invalid';
      authority = rawHeaders[i + 1] as string;
    } else if (name.length === 4 && name.toLowerCase() === 'host') {
      if (host !== undefined) return 'invalid';
      host = rawHeaders[i + 1] as string;
    }
  }
  // Unlike an empty Host (HTTP/1.0 style), an empty `:authority` is malformed (RFC 9113 §8.3.1).
  if (authority === '') return 'invalid';
  const parsed = parseHostValue(authority ?? host);
  if (authority === undefined || host === undefined || typeof parsed === 'string') return parsed;
  const other = parseHostValue(host);
  return typeof other !== 'string' && other.hostname === parsed.hostname && other.port === parsed.port
    ? parsed
    : 'invalid';
}

/** One Host header's value (or an `:authority`), as `parseHost` checks it. */
function parseHostValue(value: string | undefined): ParsedHost {
  // An empty Host is what a client sends for a target without an authority (RFC 9112 §3.2).
  if (value === undefined || value === '') return 'none';

  let name: string;
  let rest: string;
  if (value.charCodeAt(0) === OPEN_BRACKET) {
    const end = value.indexOf(']');
    if (end === -1) return 'invalid';
    name = value.slice(1, end).toLowerCase();
    if (!isIPv6(name)) return 'invalid';
    rest = value.slice(end + 1);
  } else {
    const colon = value.indexOf(':');
    // Normalizing trims: whitespace inside the value is refused here, before it could vanish.
    name = colon === -1 ? value : value.slice(0, colon);
    if (/\s/.test(name)) return 'invalid';
    name = normalizeHostname(name);
    if (!HOSTNAME.test(name)) return 'invalid';
    rest = colon === -1 ? '' : value.slice(colon);
  }
  if (rest === '') return { hostname: name, port: undefined };
  if (rest.charCodeAt(0) !== COLON) return 'invalid';
  const digits = rest.slice(1);
  if (!PORT.test(digits)) return 'invalid';
  const port = Number(digits);
  return port >= 1 && port <= 65_535 ? { hostname: name, port } : 'invalid';
}

/**
 * Step 1. `host` is `parseHost` of the request's headers; `servername` the connection's normalized
 * SNI name (HTTPS only), which stands in for a missing Host (HTTP/1.0); `target` the request target
 * as received (path and query). Returns a decision, or the hostname whose route decides the rest
 * (`decide`).
 *
 * An absolute-form target (`GET http://a.example/ HTTP/1.1`, which a server must prefer over the
 * Host header) is refused whatever its authority: only proxies are sent those, so refusing them
 * leaves the Host header the one place a request names its host.
 */
export function beforeRoute(
  scheme: Scheme,
  host: ParsedHost,
  servername: string | undefined,
  target: string,
): EdgeDecision | string {
  if (target.charCodeAt(0) !== SLASH) return BAD_REQUEST_TARGET;
  // Before the challenge path too: a CA sends a well-formed Host, and nothing else gets past a bad one.
  if (host === 'invalid') return BAD_HOST;
  const hostname = host === 'none' ? servername : host.hostname;
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
  // Answered for a live claim whether served or not: a claim behind the customer's CDN proves its
  // routing this way before it has a certificate (domain/routing-proof.ts).
  if (target.startsWith(ROUTING_PROOF_PATH)) {
    const query = target.indexOf('?');
    const nonce = target.slice(ROUTING_PROOF_PATH.length, query === -1 ? undefined : query);
    return isRoutingProofNonce(nonce) ? { action: 'routing-proof', hostname, nonce } : BAD_PROOF_NONCE;
  }
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
  route: Route | undefined,
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
