import type { Config } from '../config.js';
import type { Resolvers } from '../domain/verification.js';
import { WireResolver } from './wire-resolver.js';

/**
 * The resolvers verification uses. Ownership may ask the zone's authoritative servers directly
 * (PORTICO_DNS_AUTHORITATIVE), so a customer who just created the TXT record is not held back by a
 * cached "no such record"; routing asks the configured servers, as visitors' resolvers will.
 */
export function createResolvers(
  config: Pick<Config, 'dnsServers' | 'dnsTimeoutMs' | 'dnsAuthoritative'>,
): Resolvers {
  const common = { servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs };
  const routing = new WireResolver(common);
  return {
    ownership: config.dnsAuthoritative ? new WireResolver({ ...common, authoritative: true }) : routing,
    routing,
  };
}
