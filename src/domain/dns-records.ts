import { createHash, randomBytes } from 'node:crypto';
import { claimBase, isApexDomain, isWildcard } from './hostname.js';

/** Where customers point their names, and how ownership is proven: the part of Config the domain logic needs. */
export interface DnsSettings {
  cnameTarget: string;
  edgeIpv4: readonly string[];
  edgeIpv6: readonly string[];
  verifyRecordName: string;
  verifyValuePrefix: string;
  /** The delegated challenge zone (`PORTICO_ACME_DNS_ZONE`), when there is one. */
  acmeDnsZone?: string;
  /** `PORTICO_ACME_CHALLENGE`: a delegation is asked for only when `dns-01` is among them. */
  acmeChallengeTypes?: readonly string[];
}

export interface DnsRecord {
  type: 'TXT' | 'CNAME' | 'A' | 'AAAA';
  name: string;
  value: string;
  purpose: 'ownership' | 'routing' | 'certificate';
}

/** Where the CA looks for a DNS-01 answer for `domain` (a wildcard's is its parent's, RFC 8555 8.4). */
export const acmeChallengeName = (domain: string) => `_acme-challenge.${claimBase(domain)}`;

/**
 * Whether Portico answers DNS-01 through its delegated challenge zone: `dns-01` among
 * PORTICO_ACME_CHALLENGE and PORTICO_ACME_DNS_ZONE set. Claims then get a delegation record, and
 * wildcards (whose certificates only DNS-01 can get) may be claimed.
 */
export function delegatesDns01(settings: Pick<DnsSettings, 'acmeDnsZone' | 'acmeChallengeTypes'>): boolean {
  return settings.acmeDnsZone !== undefined && settings.acmeChallengeTypes?.includes('dns-01') === true;
}

/**
 * The delegation an organization's claim on `domain` asks for, when Portico answers DNS-01 in its
 * own zone: `_acme-challenge.{domain}` CNAME `{challengeLabel}.{zone}`. Undefined without one.
 */
export function delegationRecord(
  orgId: string,
  domain: string,
  settings: Pick<DnsSettings, 'acmeDnsZone' | 'acmeChallengeTypes'>,
): DnsRecord | undefined {
  const zone = settings.acmeDnsZone;
  if (zone === undefined || !delegatesDns01(settings)) return undefined;
  return {
    type: 'CNAME',
    name: acmeChallengeName(domain),
    value: `${challengeLabel(orgId, domain)}.${zone}`,
    purpose: 'certificate',
  };
}

/**
 * Where the ownership TXT lives: `{record name}.{domain}` (`_mixpeek-verify.shop.acme.com`); a
 * wildcard's at its base (`_mixpeek-verify.acme.com` for `*.acme.com`), since the name under a
 * wildcard label is not one a record can be created at on its own.
 */
export const ownershipRecordName = (recordName: string, domain: string) =>
  `${recordName}.${claimBase(domain)}`;

/**
 * The name whose routing a check asks DNS about: the claim's own, or for a wildcard a fresh random
 * label under its base each time (`k3x….acme.com` for `*.acme.com`), which only the wildcard's own
 * record can answer; a fixed label could be answered by a record the customer made for it alone.
 */
export function routingCheckName(domain: string): string {
  if (!isWildcard(domain)) return domain;
  let label = '';
  for (const byte of randomBytes(16)) label += BASE32[byte & 31];
  return `${label}.${claimBase(domain)}`;
}
export const ownershipRecordValue = (token: string, settings: DnsSettings) =>
  `${settings.verifyValuePrefix}${token}`;

/**
 * Whether routing for `domain` must use addresses: an apex cannot hold a CNAME, so when the
 * operator publishes edge addresses, apexes point A/AAAA at them. Without edge addresses an apex
 * still gets the CNAME target, which DNS hosts with CNAME flattening (ALIAS/ANAME) accept.
 */
export function routesByAddress(domain: string, settings: DnsSettings): boolean {
  return (
    !isWildcard(domain) && isApexDomain(domain) && settings.edgeIpv4.length + settings.edgeIpv6.length > 0
  );
}

/** The routing values the customer's DNS must answer with (`routing.configured` in the API). */
export function routingTargets(domain: string, settings: DnsSettings): string[] {
  return routesByAddress(domain, settings)
    ? [...settings.edgeIpv4, ...settings.edgeIpv6]
    : [settings.cnameTarget];
}

/**
 * Every record the customer must create for `domain`, in the order they are usually created: the
 * ownership TXT, the routing, and the certificate delegation where Portico answers DNS-01.
 */
export function requiredDnsRecords(
  domain: string,
  token: string,
  orgId: string,
  settings: DnsSettings,
): DnsRecord[] {
  const records: DnsRecord[] = [
    {
      type: 'TXT',
      name: ownershipRecordName(settings.verifyRecordName, domain),
      value: ownershipRecordValue(token, settings),
      purpose: 'ownership',
    },
  ];
  if (routesByAddress(domain, settings)) {
    for (const value of settings.edgeIpv4)
      records.push({ type: 'A', name: domain, value, purpose: 'routing' });
    for (const value of settings.edgeIpv6)
      records.push({ type: 'AAAA', name: domain, value, purpose: 'routing' });
  } else {
    records.push({ type: 'CNAME', name: domain, value: settings.cnameTarget, purpose: 'routing' });
  }
  const delegation = delegationRecord(orgId, domain, settings);
  if (delegation) records.push(delegation);
  return records;
}

/** RFC 4648 base32, lowercase: letters and digits only, so any slice of it is a DNS label. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** 20 base32 characters: 100 bits of the digest. */
const CHALLENGE_LABEL_LENGTH = 20;

/**
 * The label of the ACME challenge zone where Portico answers DNS-01 for an organization's claim on
 * `name`: the customer delegates `_acme-challenge.{name}` once, with a CNAME to
 * `{label}.{PORTICO_ACME_DNS_ZONE}`, and the issuer writes that claim's challenge TXT records at the
 * label (DnsChallengeStore). A wildcard claim `*.acme.com` has the same delegation as `acme.com`
 * (the CA looks for both at `_acme-challenge.acme.com`), so it has the same label.
 *
 * Derived, not stored: a digest of the organization and the name, so it is the same for the whole
 * life of the claim (and of a claim made again later, whose customer's CNAME then still holds) and
 * different for every other organization. That difference is what keeps one organization's
 * delegation from answering for another's claim on the same name: Portico writes a claim's answers
 * only at its own organization's label, which another organization's CNAME does not point to. The
 * label need not be secret (it is in the customer's public DNS); it must not be chosen by anyone
 * but Portico, and it is not: organization ids are Portico's. 100 bits make two pairs sharing a
 * label as unlikely as guessing a random 100-bit key.
 */
export function challengeLabel(orgId: string, name: string): string {
  const base = claimBase(name);
  const digest = createHash('sha256').update(`portico dns-01 delegation\0${orgId}\0${base}`).digest();
  let label = '';
  // Five bits at a time from the front of the digest.
  for (let bit = 0; label.length < CHALLENGE_LABEL_LENGTH; bit += 5) {
    const byte = bit >> 3;
    const word = ((digest[byte] ?? 0) << 8) | (digest[byte + 1] ?? 0);
    label += BASE32[(word >> (11 - (bit & 7))) & 31];
  }
  return label;
}
