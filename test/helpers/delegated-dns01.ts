/**
 * What the tests of delegated DNS-01 (issue 15) set up around Portico, whichever way they run it
 * (`portico serve` or the in-process rig): the loopback DNS server holding the customer's zone,
 * Pebble validating through it, and a tripwire where Pebble would connect for HTTP-01 and
 * TLS-ALPN-01, so a test can show a certificate came over DNS-01 with no connection to the name's
 * address. The test delegates the challenge zone to Portico's dns role once it listens
 * (`dns.delegate(zone, address)`), as the platform's NS records do.
 */
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { startDnsServer, type TestDnsServer } from './dns-server.js';
import { type Pebble, startPebble } from './pebble.js';
import { type ServedPortico, servePortico } from './process.js';

/**
 * A random address in 127.0.0.0/8 other than 127.0.0.1, so a proxy (and anything else the test puts
 * at the address DNS gives for the name) is told apart from the edge, and two test files running at
 * once do not meet.
 */
export function loopbackAddress(): string {
  const octet = () => 2 + Math.floor(Math.random() * 250);
  return `127.${octet()}.${octet()}.${octet()}`;
}

export interface Tripwire {
  readonly port: number;
  /** Connections accepted so far (each is closed at once). */
  connections(): number;
  close(): Promise<void>;
}

/** A listener on `host` that counts and drops every connection: where no one may connect. */
export async function startTripwire(host = '127.0.0.1'): Promise<Tripwire> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Dns01Ca {
  dns: TestDnsServer;
  pebble: Pebble;
  /** Pebble's HTTP-01 and TLS-ALPN-01 port, on `tripwireHost`. */
  tripwire: Tripwire;
  close(): Promise<void>;
}

/**
 * The loopback DNS server and Pebble asking it, whose HTTP-01 and TLS-ALPN-01 port is a tripwire on
 * `tripwireHost`: put there the address the customer's DNS gives for the name, and any attempt by
 * the CA to validate another way than DNS-01 is counted.
 */
export async function startDns01Ca({ tripwireHost = '127.0.0.1' } = {}): Promise<Dns01Ca> {
  const dns = await startDnsServer();
  const tripwire = await startTripwire(tripwireHost);
  const pebble = await startPebble({
    dnsServer: dns.address,
    httpPort: tripwire.port,
    tlsPort: tripwire.port,
  }).catch(async (error) => {
    await tripwire.close();
    await dns.close();
    throw error;
  });
  return {
    dns,
    pebble,
    tripwire,
    async close() {
      await pebble.stop();
      await tripwire.close();
      await dns.close();
    },
  };
}

/** The part of add-domain's answer the customer's records are made from. */
export interface AddedDomain {
  domain: string;
  verification_token: string;
  dns_records: { type: string; name: string; value: string; purpose: string }[];
}

/**
 * The customer's zone as a customer who delegated the certificate has it: the ownership TXT, the
 * `_acme-challenge` CNAME into the challenge zone (add-domain's `certificate` record), and the name
 * itself at `address` (its old host, or a proxy), never at the edge.
 */
export function publishDelegatedDomain(dns: TestDnsServer, added: AddedDomain, address: string): void {
  const delegation = added.dns_records.find((record) => record.purpose === 'certificate');
  if (!delegation) throw new Error(`no certificate delegation among ${JSON.stringify(added.dns_records)}`);
  dns.set(`_mixpeek-verify.${added.domain}`, 'TXT', `mixpeek-site-verification=${added.verification_token}`);
  dns.set(delegation.name, 'CNAME', delegation.value);
  dns.set(added.domain, 'A', address);
}

export interface HttpsAnswer {
  status: number;
  body: string;
  /** The leaf the server presented. */
  certificate: X509Certificate;
}

/** GET https://{host}:{port}{path} for `servername` (SNI and Host), trusting `ca` only. */
export function httpsGet(options: {
  host: string;
  port: number;
  servername: string;
  ca: string;
  path?: string;
}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    https
      .get(
        {
          host: options.host,
          port: options.port,
          path: options.path ?? '/',
          servername: options.servername,
          headers: { host: options.servername },
          ca: options.ca,
          agent: false,
        },
        (res) => {
          const certificate = new X509Certificate((res.socket as TLSSocket).getPeerCertificate().raw);
          let body = '';
          res.on('data', (chunk) => {
            body += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, certificate }));
        },
      )
      .on('error', reject);
  });
}

/** Portico's challenge zone in the `portico serve` tests, delegated to its dns role by the loopback DNS server. */
export const CHALLENGE_ZONE = 'acme-challenges.portico.test';

/** `portico serve` issuing from Pebble over delegated DNS-01, with what stands around it. */
export interface DelegatedDns01 extends Dns01Ca {
  portico: ServedPortico;
}

/**
 * Certificates over delegated DNS-01 as `portico serve` runs them with the `dns` role (issue 15):
 * `startDns01Ca`, and Portico with every role, its dns role delegated CHALLENGE_ZONE by the
 * loopback DNS server (`delegate`), as a recursive resolver follows the zone's NS records. `env`
 * adds to the configuration (the API key, the store); `tripwireHost` is as for `startDns01Ca`.
 */
export async function startDelegatedDns01(
  env: Record<string, string>,
  { tripwireHost = '127.0.0.1' } = {},
): Promise<DelegatedDns01> {
  const ca = await startDns01Ca({ tripwireHost });
  let portico: ServedPortico | undefined;
  try {
    portico = await servePortico({
      PORTICO_ROLES: 'api,worker,edge,dns',
      PORTICO_DNS_SERVERS: ca.dns.address,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: ca.pebble.directoryUrl,
      PORTICO_ACME_CA_FILE: ca.pebble.caFile,
      PORTICO_ACME_CHALLENGE: 'dns-01,http-01',
      PORTICO_ACME_DNS_ZONE: CHALLENGE_ZONE,
      PORTICO_DNS_LISTEN: '127.0.0.1:0',
      ...env,
    });
    const [, dnsRole] = await portico.process.waitFor(/Portico dns listening on (\S+)/);
    ca.dns.delegate(CHALLENGE_ZONE, dnsRole as string);
  } catch (error) {
    await portico?.close();
    await ca.close();
    throw error;
  }
  const served = portico;
  return {
    ...ca,
    portico: served,
    async close() {
      await served.close();
      await ca.close();
    },
  };
}
