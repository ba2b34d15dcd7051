/**
 * The DNS checks behind verification: does the customer's domain prove
 * ownership (a TXT record), and does it route to the platform (a CNAME, or
 * for an apex, A/AAAA records on the edge addresses)?
 *
 * Each check returns what DNS showed and, when it fails, errors with a stable
 * code and a sentence the customer can act on. `definitive` says whether DNS
 * settled the question: a wrong or missing record is an answer, a timeout is
 * not, and only answers may move a domain to `failed` or `moved`.
 */
import net from 'node:net';
import {
  canonicalName,
  type ExtendedDnsError,
  type LookupFailure,
  type LookupResult,
  type Resolver,
} from './resolver.js';

/** Every code a check reports. Stable: stored, served by the API, documented in docs/errors.md. */
export const DNS_ERROR_CODES = [
  /** No TXT record at the ownership name (NXDOMAIN or NODATA). */
  'txt_not_found',
  /** TXT values exist at the ownership name, none is the expected one. */
  'txt_mismatch',
  /** The domain exists but has no CNAME, A or AAAA record. */
  'routing_not_found',
  /** The domain's CNAME chain does not reach the CNAME target. */
  'cname_mismatch',
  /** An A record of the domain is not an edge address. */
  'a_mismatch',
  /** An AAAA record of the domain is not an edge address. */
  'aaaa_mismatch',
  /** The domain does not exist in DNS (routing check). */
  'nxdomain',
  /** The CNAME chain loops or is too long. */
  'cname_loop',
  /** No CNAME at `_acme-challenge.{domain}`: the certificate delegation is not in place. */
  'delegation_not_found',
  /** `_acme-challenge.{domain}` is a CNAME to another name than the claim's label in the challenge zone. */
  'delegation_mismatch',
  /** A DNS server failed (SERVFAIL or another error code). Not definitive. */
  'servfail',
  /** A DNS server refused the query. Not definitive. */
  'refused',
  /** No DNS server answered in time. Not definitive. */
  'timeout',
  /** The DNS servers could not be reached. Not definitive. */
  'unreachable',
  /**
   * The resolver could not validate the name's DNSSEC signatures (Extended DNS Error 6-12: bogus,
   * expired or missing signatures or keys). Every CA refuses such a name. Not definitive: fixing
   * the zone's DS or keys settles it on the next check.
   */
  'dnssec_bogus',
  /** The server failed or refused with another Extended DNS Error; the message carries its info-code. Not definitive. */
  'dns_extended_error',
] as const;

export type DnsErrorCode = (typeof DNS_ERROR_CODES)[number];

export interface DnsError {
  code: DnsErrorCode;
  /** One sentence for the customer: what is wrong and what to do. */
  message: string;
}

/** Codes that only say DNS did not answer; the check should run again. */
const INCONCLUSIVE: ReadonlySet<DnsErrorCode> = new Set([
  'servfail',
  'refused',
  'timeout',
  'unreachable',
  'dnssec_bogus',
  'dns_extended_error',
]);

/** Whether an error with this (stored) code is DNS's answer, which counts against a domain, or its silence. */
export const isDefinitive = (code: string): boolean => !INCONCLUSIVE.has(code as DnsErrorCode);

export interface OwnershipCheckInput {
  /** The ownership record's name, e.g. `_mixpeek-verify.shop.acme.com` (domain/dns-records.ts builds it). */
  name: string;
  /** e.g. `mixpeek-site-verification=`. */
  valuePrefix: string;
  token: string;
  signal?: AbortSignal;
}

export interface OwnershipCheck {
  ok: boolean;
  /** True when DNS answered: the record is there, absent or wrong. */
  definitive: boolean;
  /** The TXT values found at the ownership name. */
  observed: string[];
  errors: DnsError[];
}

/**
 * Checks that the TXT record `name` holds `valuePrefix + token`
 * as one of its values. A record split into several strings counts as their
 * concatenation; other values beside it (other services' tokens) are fine; a
 * CNAME at the name is followed, so the record may be delegated. One lookup.
 */
export async function checkOwnership(
  resolver: Resolver,
  input: OwnershipCheckInput,
): Promise<OwnershipCheck> {
  const name = canonicalName(input.name);
  const expected = input.valuePrefix + input.token;
  const result = await resolver.lookup(name, 'TXT', { signal: input.signal });
  const observed = result.values;
  if (result.failure !== undefined) {
    const error =
      result.failure === 'nxdomain' || result.failure === 'nodata'
        ? { code: 'txt_not_found' as const, message: txtNotFound(result, expected) }
        : lookupError(result, result.failure);
    return conclude([error], { observed });
  }
  if (observed.includes(expected)) return conclude([], { observed });
  return conclude([{ code: 'txt_mismatch', message: txtMismatch(result, expected, input.valuePrefix) }], {
    observed,
  });
}

export interface DelegationCheckInput {
  /** `_acme-challenge.{domain}`. */
  name: string;
  /** `{label}.{challenge zone}`: where the CNAME must point. */
  target: string;
  signal?: AbortSignal;
}

export interface DelegationCheck {
  ok: boolean;
  definitive: boolean;
  /** `CNAME {target}` as DNS answered it, or nothing. */
  observed: string[];
  errors: DnsError[];
}

/**
 * Checks the certificate delegation: `_acme-challenge.{domain}` is a CNAME straight to the claim's
 * label in Portico's challenge zone, where the dns role answers DNS-01 (RFC 8555 8.4 lets the TXT be
 * reached through a CNAME). One lookup; the CNAME itself is compared, not what it resolves to.
 */
export async function checkDelegation(
  resolver: Resolver,
  input: DelegationCheckInput,
): Promise<DelegationCheck> {
  const name = canonicalName(input.name);
  const target = canonicalName(input.target);
  const result = await resolver.lookup(name, 'CNAME', { signal: input.signal });
  const found = result.values[0];
  const observed = found === undefined ? [] : [`CNAME ${found}`];
  if (found === target) return conclude([], { observed });
  if (found !== undefined) {
    const message = `${name} points to ${found}, not ${target}: point its CNAME at ${target} (a CNAME left by another provider answers for that provider only)`;
    return conclude([{ code: 'delegation_mismatch', message }], { observed });
  }
  if (result.failure !== undefined && result.failure !== 'nxdomain' && result.failure !== 'nodata') {
    return conclude([lookupError(result, result.failure)], { observed });
  }
  const message = `${name} has no CNAME: create CNAME ${name} → ${target} so certificates can be issued and renewed by DNS, wherever the domain points`;
  return conclude([{ code: 'delegation_not_found', message }], { observed });
}

export interface RoutingCheckInput {
  /** The name asked about: the customer's domain, normalized (or a random name under a wildcard's base). */
  domain: string;
  /**
   * Where the customer's routing record is, when not at `domain`: `*.acme.com` for a wildcard claim,
   * whose routing is asked at a random label under `acme.com`. What the messages say to create.
   */
  recordName?: string;
  /** What customers CNAME to, e.g. `cname.apps.example.net`. */
  cnameTarget: string;
  /** Addresses an apex's A records must point to; empty when apexes are not offered. */
  edgeIPv4: readonly string[];
  /** Addresses an apex's AAAA records must point to; empty when there are none. */
  edgeIPv6: readonly string[];
  signal?: AbortSignal;
}

export interface RoutingCheck {
  ok: boolean;
  /** True when DNS answered: routing is right or definitely wrong. */
  definitive: boolean;
  /** The records that route the domain here, e.g. `CNAME cname.apps.example.net`, `A 203.0.113.10`. */
  configured: string[];
  /** What DNS answered for the domain: `CNAME x.example.net` per chain link, or `A 1.2.3.4`, `AAAA 2001:db8::1`. */
  observed: string[];
  errors: DnsError[];
}

/**
 * Checks that the domain routes to the platform: its CNAME chain reaches
 * `cnameTarget` (compared without case or trailing dot), or, without a CNAME
 * (an apex), it has A or AAAA records and every one of them is an edge
 * address, since a single stray record sends some visitors elsewhere.
 *
 * One lookup for a CNAME straight to the target (the usual case), two for a
 * chain through the customer's own aliases, three for an apex.
 */
export async function checkRouting(resolver: Resolver, input: RoutingCheckInput): Promise<RoutingCheck> {
  const domain = canonicalName(input.domain);
  const target = canonicalName(input.cnameTarget);
  const configured = [
    `CNAME ${target}`,
    ...input.edgeIPv4.map((a) => `A ${a}`),
    ...input.edgeIPv6.map((a) => `AAAA ${a}`),
  ];
  const opts = { signal: input.signal };

  const cname = await resolver.lookup(domain, 'CNAME', opts);
  const first = cname.values[0];
  if (first !== undefined) {
    if (first === target) return conclude([], { configured, observed: [`CNAME ${first}`] });
    // The customer may alias through names of their own: follow the whole chain.
    const chain = await resolver.lookup(domain, 'A', opts);
    const hops = chain.cnameChain.length > 0 ? chain.cnameChain : [first];
    const observed = hops.map((hop) => `CNAME ${hop}`);
    if (hops.includes(target)) return conclude([], { configured, observed });
    const error =
      chain.failure !== undefined && chain.failure !== 'nxdomain' && chain.failure !== 'nodata'
        ? lookupError(chain, chain.failure)
        : {
            code: 'cname_mismatch' as const,
            message: `${domain} points to ${hops.join(' → ')}, not ${target}: point ${input.recordName === undefined ? 'its CNAME' : `the CNAME ${input.recordName}`} at ${target}`,
          };
    return conclude([error], { configured, observed });
  }
  if (cname.failure === 'nxdomain') {
    const message = `${domain} does not exist in DNS (NXDOMAIN): ${createRouting(domain, target, input)}`;
    return conclude([{ code: 'nxdomain', message }], { configured, observed: [] });
  }
  if (cname.failure !== 'nodata' && cname.failure !== undefined) {
    return conclude([lookupError(cname, cname.failure)], { configured, observed: [] });
  }

  // No CNAME: an apex, or a name with address records of its own.
  const [a, aaaa] = await Promise.all([
    resolver.lookup(domain, 'A', opts),
    resolver.lookup(domain, 'AAAA', opts),
  ]);
  const observed = [...a.values.map((v) => `A ${v}`), ...aaaa.values.map((v) => `AAAA ${v}`)];
  const errors = [
    ...addressErrors(a, 'a_mismatch', input.edgeIPv4, 'ipv4', domain, target),
    ...addressErrors(aaaa, 'aaaa_mismatch', input.edgeIPv6, 'ipv6', domain, target),
  ];
  if (errors.length === 0 && observed.length === 0) {
    const message = `${domain} has no CNAME, A or AAAA record: ${createRouting(domain, target, input)}`;
    errors.push({ code: 'routing_not_found', message });
  }
  return conclude(errors, { configured, observed });
}

function conclude<T extends object>(
  errors: DnsError[],
  seen: T,
): T & { ok: boolean; definitive: boolean; errors: DnsError[] } {
  return {
    ok: errors.length === 0,
    // One definite problem settles the check even if another lookup failed.
    definitive: errors.length === 0 || errors.some((e) => !INCONCLUSIVE.has(e.code)),
    ...seen,
    errors,
  };
}

function txtNotFound(result: LookupResult, expected: string): string {
  const end = result.cnameChain.at(-1);
  const why = result.failure === 'nxdomain' ? 'does not exist' : 'has no TXT record';
  const where =
    end === undefined ? `${result.name} ${why}` : `${result.name} is a CNAME to ${end}, which ${why}`;
  return `No TXT record found: ${where}. Create TXT ${result.name} with the value ${expected}`;
}

function txtMismatch(result: LookupResult, expected: string, prefix: string): string {
  const count = result.values.length;
  const head = `TXT ${result.name} has ${count} value${count === 1 ? '' : 's'}, none is ${expected}`;
  // The two usual slips: quotes pasted into the value, and a token from an earlier claim left in place.
  if (result.values.some((v) => v.trim().replace(/^"(.*)"$/, '$1') === expected)) {
    return `${head}: remove the quotes or spaces around the value`;
  }
  const stale = result.values.find((v) => v.startsWith(prefix));
  if (stale !== undefined) return `${head}: replace ${stale}, which holds another token, with ${expected}`;
  return `${head}: add ${expected} (other values can stay)`;
}

function createRouting(domain: string, target: string, input: RoutingCheckInput): string {
  const apex = input.edgeIPv4.length > 0 ? `, or at a zone apex A ${input.edgeIPv4.join(', ')}` : '';
  return `create CNAME ${input.recordName ?? domain} → ${target}${apex}`;
}

/** An error for each family whose records are not all edge addresses, or whose lookup failed. */
function addressErrors(
  result: LookupResult,
  code: 'a_mismatch' | 'aaaa_mismatch',
  edge: readonly string[],
  family: 'ipv4' | 'ipv6',
  domain: string,
  target: string,
): DnsError[] {
  if (result.failure !== undefined && result.failure !== 'nxdomain' && result.failure !== 'nodata') {
    return [lookupError(result, result.failure)];
  }
  // BlockList compares parsed addresses, so 2001:DB8::1 and 2001:db8:0::1 are one address.
  const allowed = new net.BlockList();
  for (const address of edge) allowed.addAddress(address, family);
  const stray = result.values.filter((address) => !allowed.check(address, family));
  if (stray.length === 0) return [];
  const type = result.type;
  const one = stray.length === 1;
  const records = `${type} ${domain} ${one ? 'is' : 'include'} ${stray.join(', ')}`;
  const them = one ? 'it' : 'them';
  if (edge.length > 0) {
    const edges = edge.join(', ');
    return [{ code, message: `${records}, not an edge address (${edges}): change or remove ${them}` }];
  }
  const message =
    type === 'A'
      ? `${records}, but apex domains are not served here: replace ${them} with CNAME ${domain} → ${target}`
      : `${records}, but there is no IPv6 edge address: remove ${them}, or IPv6 visitors will not reach the app`;
  return [{ code, message }];
}

function lookupError(result: LookupResult, failure: Exclude<LookupFailure, 'nxdomain' | 'nodata'>): DnsError {
  const name = result.name;
  const server = result.server ?? 'the DNS server';
  const again = 'the check will run again';
  if (failure === 'cname_loop') {
    const chain = [name, ...result.cnameChain].join(' → ');
    return {
      code: failure,
      message: `The CNAME chain of ${name} loops or is too long (${chain}): fix its CNAME records`,
    };
  }
  // A failure is about the last name asked: the chain's end when the domain is a CNAME to a name
  // served elsewhere. Naming the customer's domain there would send them to the wrong DNS host.
  const hop = result.cnameChain.at(-1) ?? name;
  const via = hop === name ? '' : ` (${name} points there: ${[name, ...result.cnameChain].join(' → ')})`;
  const extended = result.extendedError;
  if (extended !== undefined && (failure === 'servfail' || failure === 'refused')) {
    return extendedError(extended, failure, server, hop, via, again);
  }
  switch (failure) {
    case 'servfail':
      return {
        code: failure,
        message: `${server} failed to answer for ${hop}${via} (SERVFAIL), often a DNSSEC or name server problem: check ${hop}'s DNS setup; ${again}`,
      };
    case 'refused':
      return {
        code: failure,
        message: `${server} refused to answer for ${hop}${via} (REFUSED): check that ${hop}'s name servers serve its zone; ${again}`,
      };
    case 'timeout':
      return { code: failure, message: `${server} did not answer for ${hop}${via} in time; ${again}` };
    case 'unreachable':
      return { code: failure, message: `${server} could not be reached to look up ${hop}${via}; ${again}` };
  }
}

/**
 * Extended DNS Error info-codes (RFC 8914 section 4, IANA registry) named in messages. 6 to 12 are
 * DNSSEC validation failures, the ones that make every CA refuse the name.
 */
const EDE_NAMES: Readonly<Record<number, string>> = {
  0: 'Other Error',
  1: 'Unsupported DNSKEY Algorithm',
  2: 'Unsupported DS Digest Type',
  3: 'Stale Answer',
  4: 'Forged Answer',
  5: 'DNSSEC Indeterminate',
  6: 'DNSSEC Bogus',
  7: 'Signature Expired',
  8: 'Signature Not Yet Valid',
  9: 'DNSKEY Missing',
  10: 'RRSIGs Missing',
  11: 'No Zone Key Bit Set',
  12: 'NSEC Missing',
  13: 'Cached Error',
  14: 'Not Ready',
  15: 'Blocked',
  16: 'Censored',
  17: 'Filtered',
  18: 'Prohibited',
  19: 'Stale NXDOMAIN Answer',
  20: 'Not Authoritative',
  21: 'Not Supported',
  22: 'No Reachable Authority',
  23: 'Network Error',
  24: 'Invalid Data',
};
const DNSSEC_FAILURES: ReadonlySet<number> = new Set([6, 7, 8, 9, 10, 11, 12]);

/** Whether an Extended DNS Error says DNSSEC validation failed (info-codes 6 to 12). */
export const isDnssecFailure = (extended: ExtendedDnsError): boolean =>
  DNSSEC_FAILURES.has(extended.infoCode);

/**
 * An Extended DNS Error in words: `Extended DNS Error 6 DNSSEC Bogus: "…"`. The server's text is
 * data from the network: one line, bounded, quoted, so it cannot pass for Portico's own words.
 */
export function describeExtendedError(extended: ExtendedDnsError): string {
  const title = EDE_NAMES[extended.infoCode] ?? 'unassigned';
  const text = extended.text
    .replace(/[\p{Cc}\s]+/gu, ' ')
    .trim()
    .slice(0, 200);
  return `Extended DNS Error ${extended.infoCode} ${title}${text ? `: "${text}"` : ''}`;
}

function extendedError(
  extended: ExtendedDnsError,
  failure: 'servfail' | 'refused',
  server: string,
  hop: string,
  via: string,
  again: string,
): DnsError {
  const detail = describeExtendedError(extended);
  const rcode = failure === 'servfail' ? 'SERVFAIL' : 'REFUSED';
  if (isDnssecFailure(extended)) {
    return {
      code: 'dnssec_bogus',
      message: `${server} could not validate the DNSSEC signatures of ${hop}${via} (${rcode}, ${detail}): no CA issues a certificate for it until its DS record at the parent zone matches its keys and its signatures are current, or DNSSEC is turned off at the parent; ${again}`,
    };
  }
  return {
    code: 'dns_extended_error',
    message: `${server} ${failure === 'servfail' ? 'failed to answer' : 'refused to answer'} for ${hop}${via} (${rcode}, ${detail}): check ${hop}'s DNS setup; ${again}`,
  };
}
