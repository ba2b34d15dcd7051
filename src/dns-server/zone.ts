import { isIP } from 'node:net';
import type { Answer, SoaAnswer } from 'dns-packet';

/**
 * The ACME challenge zone as the `dns` role serves it: what is fixed from the settings (the SOA and
 * NS records at the apex, the default name server's address) and how long answers may be cached.
 * The TXT records under it come from the store, per query (responder.ts).
 */

/**
 * Time to live, in seconds, of what the zone answers.
 * - The apex's SOA and NS change only with the settings: an hour, as zones usually give them.
 * - Challenge TXT records change within seconds (written just before the CA is asked, removed
 *   after), and one label holds the answers of several orders over a claim's life: a resolver that
 *   kept an old set would fail the next validation. So 1 s, as acme-dns and most DNS-01 services
 *   give them.
 * - "No such record" (RFC 2308: the SOA's MINIMUM, and the TTL of the SOA sent with the negative
 *   answer) is 1 s for the same reason: a CA's resolver that asked a moment before the TXT record
 *   was written must ask again, not remember that it was missing.
 */
export const TTL = { apex: 3600, challenge: 1, negative: 1 } as const;

/** What the zone is made of, from PORTICO_ACME_DNS_ZONE, PORTICO_DNS_NAMESERVERS and PORTICO_DNS_LISTEN. */
export interface ZoneSettings {
  /** Lowercase, without a trailing dot. */
  zone: string;
  /** Host names of the dns nodes, outside the zone; empty for the default `ns.{zone}`. */
  nameservers: readonly string[];
  /** The address the role listens on: the default name server's address. */
  listenHost: string;
}

/** The fixed part of the zone, ready to answer from. */
export interface ChallengeZone {
  /** Lowercase, without a trailing dot. */
  name: string;
  nameservers: readonly string[];
  /** A and AAAA records of the zone's own names (the default name server), by lowercase name. */
  addresses: ReadonlyMap<string, readonly Answer[]>;
  /**
   * The SOA record. Its serial is the time of the answer in seconds since 1970: the zone's content
   * lives in the store and changes with every challenge, there are no zone transfers to drive
   * (every dns node reads the store itself), so the serial only has to grow, and it does, on every
   * node alike.
   */
  soa(now: Date, ttl?: number): SoaAnswer;
}

export function challengeZone({ zone, nameservers, listenHost }: ZoneSettings): ChallengeZone {
  const defaultServer = `ns.${zone}`;
  const servers = nameservers.length > 0 ? [...nameservers] : [defaultServer];
  const addresses = new Map<string, Answer[]>();
  if (nameservers.length === 0) {
    const type = isIP(listenHost) === 6 ? 'AAAA' : 'A';
    addresses.set(defaultServer, [
      { name: defaultServer, type, class: 'IN', ttl: TTL.apex, data: listenHost },
    ]);
  }
  return {
    name: zone,
    nameservers: servers,
    addresses,
    soa: (now, ttl = TTL.apex) => ({
      name: zone,
      type: 'SOA',
      class: 'IN',
      ttl,
      data: {
        mname: servers[0] ?? defaultServer,
        rname: `hostmaster.${zone}`,
        // Seconds since 1970 fit the serial's 32 bits until 2106 (and RFC 1982 arithmetic after).
        serial: Math.floor(now.getTime() / 1000) >>> 0,
        refresh: 3600,
        retry: 600,
        expire: 604800,
        minimum: TTL.negative,
      },
    }),
  };
}
