import { isIP } from 'node:net';
import { parse as parseDomain } from 'tldts';
import { toASCII } from 'tr46';
import { canonicalName } from '../dns/resolver.js';
import { errors } from './errors.js';
import { isValidALabel } from './punycode.js';
import { isPlatformName } from './serving.js';

/**
 * Hostname normalization and the policy of which names a customer may add. Pure: no I/O.
 *
 * A name is normalized the same way wherever it enters (add, the `{domain}` path parameter, the
 * edge's Host and SNI), so `Search.Acme.com.` and `search.acme.com` are one name everywhere.
 */

/** Special-use names (RFC 6761, RFC 6762, RFC 7686, RFC 9476) that can never be proven on public DNS. */
const RESERVED_SUFFIXES = ['localhost', 'local', 'invalid', 'onion', 'arpa', 'alt', 'internal', 'home.arpa'];

/**
 * TLDs that are not in the public suffix list but are accepted: RFC 6761 reserves them for
 * testing, which is how staging platforms and Portico's own tests use them.
 */
const TESTING_TLDS = ['test', 'example'];

const LABEL_CHARS = /^[a-z0-9-]+$/;
/** Allocation-free: normalizeHostname runs on every TLS handshake and request at the edge. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

export interface HostnamePolicy {
  /** The platform's own domain: names under it are apps' default hostnames, never customers'. */
  appsDomain: string;
  /**
   * Whether a wildcard `*.{domain}` may be claimed: only where its certificate can be had, which
   * takes DNS-01 through the delegated challenge zone (dns-records.ts, `delegatesDns01`).
   */
  wildcards?: boolean;
}

/** A wildcard claim's leading label: `*.acme.com` covers every name one label below `acme.com`. */
const WILDCARD_PREFIX = '*.';

/** Whether a (normalized) name is a wildcard claim, `*.{base}`. */
export function isWildcard(name: string): boolean {
  return name.startsWith(WILDCARD_PREFIX);
}

/**
 * The name a claim's DNS records hang from: `acme.com` for the wildcard `*.acme.com` (its ownership
 * TXT is `_mixpeek-verify.acme.com`, its delegation `_acme-challenge.acme.com`), the name itself
 * otherwise.
 */
export function claimBase(name: string): string {
  return isWildcard(name) ? name.slice(WILDCARD_PREFIX.length) : name;
}

/**
 * The wildcard claim that would cover `hostname` at the edge: `*.acme.com` for `x.acme.com`. Only
 * one label deep, as TLS matches a wildcard certificate (RFC 6125 6.4.3): `a.b.acme.com` is not
 * covered by `*.acme.com`. Undefined where no claimable wildcard could cover the name (`acme.com`,
 * whose `*.com` is a public suffix's, never claimable). Allocation-light: asked on every route miss.
 */
export function coveringWildcard(hostname: string): string | undefined {
  const dot = hostname.indexOf('.');
  // The parent needs two labels at least: `*.com` is never a claim.
  if (dot <= 0 || hostname.indexOf('.', dot + 1) === -1) return undefined;
  return `*${hostname.slice(dot)}`;
}

/**
 * The normal form of a hostname wherever one enters Portico (the API, the edge's Host and SNI, the
 * configuration, the CLI): trimmed, canonical, and Unicode converted to its punycode A-label.
 * Never throws: a name that cannot be converted is returned as it is, for the policy to refuse.
 */
export function normalizeHostname(input: string): string {
  const name = canonicalName(input.trim());
  return isAscii(name) ? name : (toALabels(name) ?? name);
}

/**
 * A Unicode name in A-labels (`bücher.de` → `xn--bcher-kva.de`), or undefined when IDNA refuses
 * it. UTS #46 processing as browsers do it (whatwg-url's settings: non-transitional, so `ß` stays
 * `ß`; bidi and joiner rules checked), with the hostname letters-digits-hyphens rule, through tr46
 * rather than `url.domainToASCII`: Node 20 and 24 disagree on about 6% of generated Unicode names
 * (Node 20 maps `ß` to `ss` and accepts mixed-direction labels browsers refuse), and what a customer
 * may add must not depend on the runtime.
 */
function toALabels(name: string): string | undefined {
  return (
    toASCII(name, {
      checkBidi: true,
      checkJoiners: true,
      checkHyphens: false,
      useSTD3ASCIIRules: true,
      transitionalProcessing: false,
    }) ?? undefined
  );
}

/**
 * When the input looks like a URL or has a port, the hostname the customer most likely meant, so
 * the error can say what to send instead.
 */
function bareHostnameOf(input: string): string | undefined {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
  if (!hasScheme && !/[/?#@:\\]/.test(input)) return undefined;
  try {
    const url = new URL(hasScheme ? input : `http://${input}`);
    return url.hostname ? normalizeHostname(url.hostname.replace(/^\[|\]$/g, '')) : '';
  } catch {
    return '';
  }
}

/**
 * Normalizes `input` and checks it against the policy; returns the normalized name or throws a
 * `PorticoError` (400) whose code says what is wrong.
 */
export function parseCustomerHostname(input: string, policy: HostnamePolicy): string {
  const trimmed = input.trim();
  if (trimmed === '') throw errors.domainInvalid(input, 'The domain is empty.');
  if (trimmed.includes('*')) return parseWildcard(input, trimmed, policy);
  return parseExactHostname(input, trimmed, policy);
}

/**
 * A wildcard claim: `*.` and then a name that could be claimed itself, not a public suffix (`*.com`,
 * `*.co.uk`: anyone can register names under those). Its certificate needs DNS-01, so it is refused
 * as not supported where that is not configured; a public suffix's wildcard is refused first,
 * since no configuration would make it acceptable.
 */
function parseWildcard(input: string, trimmed: string, policy: HostnamePolicy): string {
  const rest = trimmed.slice(WILDCARD_PREFIX.length);
  if (!trimmed.startsWith(WILDCARD_PREFIX) || rest.includes('*')) {
    throw errors.domainInvalid(
      input,
      'A wildcard is "*." followed by a domain, such as "*.acme.com": "*" may only be the whole first label.',
    );
  }
  const base = canonicalName(rest);
  const ascii = isAscii(base) ? base : (toALabels(base) ?? base);
  const suffix = parseDomain(ascii, { allowPrivateDomains: true }).publicSuffix;
  if (ascii === '' || suffix === ascii || !ascii.includes('.')) {
    throw errors.domainIsPublicSuffix(`${WILDCARD_PREFIX}${ascii}`);
  }
  const name = `${WILDCARD_PREFIX}${parseExactHostname(input, rest, policy)}`;
  if (name.length > 253) throw errors.domainTooLong(input);
  if (policy.wildcards !== true) throw errors.domainWildcard(input);
  return name;
}

function parseExactHostname(input: string, trimmed: string, policy: HostnamePolicy): string {
  if (isIP(trimmed) || isIP(trimmed.replace(/^\[|\]$/g, ''))) throw errors.domainIsIp(input);
  const bare = bareHostnameOf(trimmed);
  if (bare !== undefined) {
    if (bare && isIP(bare)) throw errors.domainIsIp(input);
    if (bare) throw errors.domainNotBareHostname(input, bare);
    throw errors.domainInvalid(input, 'Send a hostname such as "shop.example.com", not a URL.');
  }
  if (/\s/.test(trimmed)) throw errors.domainInvalid(input, 'A domain cannot contain spaces.');

  let name = canonicalName(trimmed);
  if (isIP(name) || isIP(name.replace(/^\[|\]$/g, ''))) throw errors.domainIsIp(input);

  if (!isAscii(name)) {
    const ascii = toALabels(name);
    if (!ascii) throw errors.domainInvalid(input, 'The domain is not a valid internationalized name.');
    name = ascii;
  }
  if (name.length > 253) throw errors.domainTooLong(input);

  const labels = name.split('.');
  for (const label of labels) checkLabel(input, label);
  checkNotSpecialUse(name);
  if (labels.length < 2) throw errors.domainSingleLabel(input);
  // A name whose last label is numeric is an IPv4 address in some notation (`1.2.3`, `0x7f.1`).
  if (/^(0x[0-9a-f]*|[0-9]+)$/.test(labels.at(-1) ?? '')) throw errors.domainIsIp(input);

  checkNotReserved(name, policy);
  return name;
}

function checkLabel(input: string, label: string): void {
  if (label === '') throw errors.domainLabelInvalid(input, label, 'is empty (two dots in a row)');
  if (label.length > 63) throw errors.domainLabelInvalid(input, label, 'is longer than 63 characters');
  if (!LABEL_CHARS.test(label)) {
    throw errors.domainLabelInvalid(input, label, 'may contain only letters, digits and hyphens');
  }
  if (label.startsWith('-') || label.endsWith('-')) {
    throw errors.domainLabelInvalid(input, label, 'cannot start or end with a hyphen');
  }
  if (label.slice(2, 4) === '--') {
    // Only punycode ("xn--") may use hyphens in positions 3 and 4 (RFC 5891), and it must be a
    // valid A-label: checked by decoding and encoding again, not by url.domainToASCII, whose
    // leniency differs between Node versions (Node 24 accepts "xn--zz").
    if (!isValidALabel(label)) {
      throw errors.domainLabelInvalid(input, label, 'is not a valid internationalized label');
    }
  }
}

function checkNotSpecialUse(name: string): void {
  for (const suffix of RESERVED_SUFFIXES) {
    if (name === suffix || name.endsWith(`.${suffix}`)) {
      throw errors.domainReserved(
        name,
        `Names under .${suffix} are reserved and cannot be proven on public DNS.`,
      );
    }
  }
}

function checkNotReserved(name: string, policy: HostnamePolicy): void {
  const apps = policy.appsDomain;
  if (isPlatformName(name, apps)) throw errors.domainUnderAppsDomain(name, apps);

  const parsed = parseDomain(name, { allowPrivateDomains: true });
  if (parsed.publicSuffix === name) throw errors.domainIsPublicSuffix(name);
  const tld = name.slice(name.lastIndexOf('.') + 1);
  if (!parsed.isIcann && !parsed.isPrivate && !TESTING_TLDS.includes(tld)) {
    throw errors.domainInvalid(name, `".${tld}" is not a top-level domain; check the spelling.`);
  }
}

/**
 * True when the name is a registrable domain itself (`acme.com`, `acme.co.uk`): DNS allows no CNAME
 * there, so routing must use A/AAAA records (or the DNS host's CNAME flattening).
 */
export function isApexDomain(name: string): boolean {
  return parseDomain(name, { allowPrivateDomains: true }).domain === name;
}
