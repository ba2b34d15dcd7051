import type { Resolvers } from './resolver.js';
import { WireResolver } from './wire-resolver.js';

/** The settings resolvers are made from (PORTICO_DNS_SERVERS, _TIMEOUT_MS, _AUTHORITATIVE). */
export interface ResolverSettings {
  dnsServers: readonly string[];
  dnsTimeoutMs: number;
  dnsAuthoritative: boolean;
}

/**
 * The resolvers verification uses. Ownership may ask the zone's authoritative servers directly
 * (PORTICO_DNS_AUTHORITATIVE), so a customer who just created the TXT record is not held back by a
 * cached "no such record"; routing asks the configured servers, as visitors' resolvers will.
 */
export function createResolvers(config: ResolverSettings): Resolvers {
  const common = { servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs };
  const routing = new WireResolver(common);
  return {
    ownership: config.dnsAuthoritative ? new WireResolver({ ...common, authoritative: true }) : routing,
    routing,
  };
}
