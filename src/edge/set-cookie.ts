import { getPublicSuffix } from 'tldts';
import { normalizeHostname } from '../domain/hostname.js';
import { isPlatformName } from '../domain/serving.js';

/**
 * Keeps an origin's cookies on its own names. Every App's default hostname is a sibling under the
 * apps domain (`a.apps.example.com`, `b.apps.example.com`), so a `Set-Cookie` with
 * `Domain=apps.example.com` from one App would reach every other App in the browser: a tenant could
 * fix another's session (cookie tossing) or shadow its cookies. Browsers refuse such a Domain only
 * when the apps domain is on the Public Suffix List; until it is (and for every browser with an
 * older list), the edge removes it. Pure: no I/O.
 *
 * Which `Domain` attribute an App's response may keep, for the name the request was routed on:
 * - on a default hostname (`{slug}.{apps domain}`): only the hostname itself. Anything wider would
 *   cover other tenants; anything else the browser rejects anyway.
 * - on a customer's own domain: the hostname or one of its parents, unless that parent is a public
 *   suffix (PSL, private section too: `github.io` is one) or the apps domain or a parent of it (a
 *   customer domain `shop.example.com` beside the apps domain `apps.example.com` must not set
 *   cookies for `example.com`, which every App's default hostname would receive).
 *
 * A `Domain` not allowed is removed, which makes the cookie host-only: it still works on the name
 * that set it, and nowhere else. Every other attribute, and cookies without `Domain`, pass unchanged.
 */
export interface CookieScope {
  /** The normalized hostname the request was routed on. */
  readonly hostname: string;
  /** The platform's apps domain (`PORTICO_APPS_DOMAIN`), normalized. */
  readonly appsDomain: string;
}

/** The cookie's `Domain` attribute as a browser reads it, or `undefined` when this one may not stay. */
export function allowedCookieDomain(domain: string, scope: CookieScope): string | undefined {
  const { hostname, appsDomain } = scope;
  if (domain === hostname) return domain;
  if (isPlatformName(hostname, appsDomain)) return undefined;
  if (!hostname.endsWith(`.${domain}`)) return undefined;
  if (domain === appsDomain || appsDomain.endsWith(`.${domain}`)) return undefined;
  if (getPublicSuffix(domain, { allowPrivateDomains: true }) === domain) return undefined;
  return domain;
}

/**
 * One `Set-Cookie` value with any `Domain` attribute the scope does not allow removed; the value
 * itself when nothing changes (nearly always). Parsed as browsers parse it (RFC 6265 §5.2), not as
 * the grammar says: the name-value pair ends at the first `;` even inside quotes, attribute names
 * are case-insensitive, surrounding whitespace is ignored and one leading dot of a domain is too.
 * Every `Domain` attribute is checked, since browsers use the last one. An allowed domain written
 * in another form (a trailing dot, Unicode) is rewritten to the normalized name, so what was
 * checked is what the browser reads.
 */
export function scopeSetCookie(value: string, scope: CookieScope): string {
  // Fast path: most cookies say nothing about their domain.
  if (!/domain/i.test(value)) return value;
  const parts = value.split(';');
  let changed = false;
  const kept = [parts[0] as string];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] as string;
    const equals = part.indexOf('=');
    const name = (equals === -1 ? part : part.slice(0, equals)).trim().toLowerCase();
    if (name !== 'domain') {
      kept.push(part);
      continue;
    }
    const raw = equals === -1 ? '' : part.slice(equals + 1).trim();
    const written = raw.startsWith('.') ? raw.slice(1) : raw;
    const domain = normalizeHostname(written);
    const allowed = domain === '' ? undefined : allowedCookieDomain(domain, scope);
    if (allowed === undefined) {
      changed = true;
    } else if (allowed === written.toLowerCase()) {
      kept.push(part);
    } else {
      changed = true;
      kept.push(` Domain=${allowed}`);
    }
  }
  return changed ? kept.join(';') : value;
}

/** Every `Set-Cookie` of a response (Node and undici give a list when there are several) scoped. */
export function scopeSetCookies(value: string | string[], scope: CookieScope): string | string[] {
  return typeof value === 'string'
    ? scopeSetCookie(value, scope)
    : value.map((v) => scopeSetCookie(v, scope));
}
