import net from 'node:net';
import { startDnsServer, type TestDnsServer } from './dns-server.js';
import { type Pebble, startPebble } from './pebble.js';
import { type ServedPortico, servePortico } from './process.js';

/** Portico's challenge zone in these tests, delegated to its dns role by the loopback DNS server. */
export const CHALLENGE_ZONE = 'acme-challenges.portico.test';

/** `portico serve` issuing from Pebble over delegated DNS-01, with what stands around it. */
export interface DelegatedDns01 {
  /** The loopback DNS server: the customers' zones, and the way (for Pebble) into the challenge zone. */
  dns: TestDnsServer;
  pebble: Pebble;
  portico: ServedPortico;
  /** Connections Pebble made to its HTTP-01 and TLS-ALPN-01 ports: none, when only DNS-01 was used. */
  connectionsToTripwire(): number;
  close(): Promise<void>;
}

/**
 * Certificates over delegated DNS-01 as `portico serve` runs them with the `dns` role (issue 15):
 * Pebble asks the loopback DNS server, which holds the customers' zones and follows an
 * `_acme-challenge` CNAME into CHALLENGE_ZONE by asking Portico's dns role (`delegate`), as a
 * recursive resolver follows the zone's NS records. Pebble's HTTP-01 and TLS-ALPN-01 ports are a
 * tripwire that counts connections. `env` adds to the configuration (the API key, the store).
 */
export async function startDelegatedDns01(env: Record<string, string>): Promise<DelegatedDns01> {
  const dns = await startDnsServer();
  let connections = 0;
  const tripwire = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => tripwire.listen(0, '127.0.0.1', resolve));
  const tripwirePort = (tripwire.address() as net.AddressInfo).port;
  let pebble: Pebble | undefined;
  let portico: ServedPortico | undefined;
  const close = async () => {
    await portico?.close();
    await pebble?.stop();
    await dns.close();
    tripwire.close();
  };
  try {
    pebble = await startPebble({ dnsServer: dns.address, httpPort: tripwirePort, tlsPort: tripwirePort });
    portico = await servePortico({
      PORTICO_ROLES: 'api,worker,edge,dns',
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
      PORTICO_ACME_CA_FILE: pebble.caFile,
      PORTICO_ACME_CHALLENGE: 'dns-01,http-01',
      PORTICO_ACME_DNS_ZONE: CHALLENGE_ZONE,
      PORTICO_DNS_LISTEN: '127.0.0.1:0',
      ...env,
    });
    const [, dnsRole] = await portico.process.waitFor(/Portico dns listening on (\S+)/);
    dns.delegate(CHALLENGE_ZONE, dnsRole as string);
  } catch (error) {
    await close();
    throw error;
  }
  return { dns, pebble, portico, connectionsToTripwire: () => connections, close };
}
