import { isApexDomain } from './hostname.js';

/** Where customers point their names, and how ownership is proven: the part of Config the domain logic needs. */
export interface DnsSettings {
  cnameTarget: string;
  edgeIpv4: readonly string[];
  edgeIpv6: readonly string[];
  verifyRecordName: string;
  verifyValuePrefix: string;
}

export interface DnsRecord {
  type: 'TXT' | 'CNAME' | 'A' | 'AAAA';
  name: string;
  value: string;
  purpose: 'ownership' | 'routing';
}

/** Where the ownership TXT lives: `{record name}.{domain}` (`_mixpeek-verify.shop.acme.com`). */
export const ownershipRecordName = (recordName: string, domain: string) => `${recordName}.${domain}`;
export const ownershipRecordValue = (token: string, settings: DnsSettings) =>
  `${settings.verifyValuePrefix}${token}`;

/**
 * Whether routing for `domain` must use addresses: an apex cannot hold a CNAME, so when the
 * operator publishes edge addresses, apexes point A/AAAA at them. Without edge addresses an apex
 * still gets the CNAME target, which DNS hosts with CNAME flattening (ALIAS/ANAME) accept.
 */
export function routesByAddress(domain: string, settings: DnsSettings): boolean {
  return isApexDomain(domain) && settings.edgeIpv4.length + settings.edgeIpv6.length > 0;
}

/** The routing values the customer's DNS must answer with (`routing.configured` in the API). */
export function routingTargets(domain: string, settings: DnsSettings): string[] {
  return routesByAddress(domain, settings)
    ? [...settings.edgeIpv4, ...settings.edgeIpv6]
    : [settings.cnameTarget];
}

/** Every record the customer must create for `domain`, in the order they are usually created. */
export function requiredDnsRecords(domain: string, token: string, settings: DnsSettings): DnsRecord[] {
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
  return records;
}
