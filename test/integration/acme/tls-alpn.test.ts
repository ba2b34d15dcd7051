import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeIssuer } from '../../../src/acme/acme-issuer.js';
import type { CertificateReader } from '../../../src/acme/certificate-reader.js';
import { storeChallenges } from '../../../src/acme/certificates.js';
import {
  type AccountKeyStore,
  type AcmeChallengeType,
  type ChallengeStore,
  tlsAlpnChallengeKey,
} from '../../../src/acme/issuer.js';
import { systemClock } from '../../../src/domain/clock.js';
import { type Edge, startEdge } from '../../../src/edge/server.js';
import type { ChallengeSource } from '../../../src/edge/sources.js';
import { StoreChallenges, StoreRoutes } from '../../../src/edge/store-sources.js';
import { createLogger } from '../../../src/logger.js';
import type { Store } from '../../../src/store/store.js';
import { ALL_HOSTNAMES } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';
import { refusedWith, TLS_ALERT, tlsExchange } from '../../helpers/tls-wire.js';

/** What the edge was asked for while answering challenges, and whether it had an answer. */
interface Lookup {
  type: AcmeChallengeType;
  /** The token (HTTP-01) or hostname (TLS-ALPN-01) asked for. */
  key: string;
  answered: boolean;
}

/** The edge's challenge source over the store, recording what the CA's connections asked for. */
class RecordingChallenges implements ChallengeSource {
  readonly lookups: Lookup[] = [];
  private readonly store: StoreChallenges;

  constructor(store: Store) {
    this.store = new StoreChallenges(store);
  }

  async keyAuthorization(token: string) {
    const answer = await this.store.keyAuthorization(token);
    this.lookups.push({ type: 'http-01', key: token, answered: answer !== undefined });
    return answer;
  }

  async tlsAlpnKeyAuthorization(hostname: string) {
    const answer = await this.store.tlsAlpnKeyAuthorization(hostname);
    this.lookups.push({ type: 'tls-alpn-01', key: hostname, answered: answer !== undefined });
    return answer;
  }
}

/** A TLS handshake with the edge; the certificate chain it presented, the leaf first. */
function handshake(port: number, servername: string, options: tls.ConnectionOptions) {
  return new Promise<X509Certificate[]>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ...options });
    socket.once('secureConnect', () => {
      const chain: X509Certificate[] = [];
      for (let peer = socket.getPeerX509Certificate(); peer !== undefined; ) {
        chain.push(peer);
        const issuer: X509Certificate | undefined = peer.issuerCertificate;
        peer = issuer === undefined || issuer.fingerprint256 === peer.fingerprint256 ? undefined : issuer;
      }
      socket.destroy();
      resolve(chain);
    });
    socket.once('error', reject);
  });
}

/**
 * TLS-ALPN-01 end to end: Pebble (Let's Encrypt's test CA) validates by connecting to the real
 * edge's HTTPS listener (its `tlsPort`), and HTTP-01 to the edge's HTTP listener (its `httpPort`),
 * for names the loopback DNS server points at 127.0.0.1. The answers go through the store, as on a
 * cluster: the worker puts them, the edge reads them.
 */
describe.each(backends)('TLS-ALPN-01 through the edge, against Pebble, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let challenges: RecordingChallenges;
  let edge: Edge;
  let unsubscribe: () => void;
  let pebble: Pebble;
  /** Where the edge reads certificates: the store of the test's rig, through its reader. */
  let certificates: CertificateReader | undefined;
  let counter = 0;
  const name = () => `shop${++counter}.alpn-${backend.name}.com`;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    challenges = new RecordingChallenges(store);
    const routes = new StoreRoutes(store, 'apps.portico.test');
    edge = await startEdge({
      host: '127.0.0.1',
      appsDomain: 'apps.portico.test',
      httpPort: 0,
      httpsPort: 0,
      routes,
      certificates: { certificate: async (hostname) => certificates?.certificate(hostname) },
      challenges,
      allowPrivateOrigins: true,
      logger: createLogger('silent'),
    });
    // As the edge role does: every change of what a name serves reaches the edge's caches.
    unsubscribe = store.subscribeServingChanges((hostname) =>
      hostname === ALL_HOSTNAMES ? edge.invalidateAll() : edge.invalidate(hostname),
    );
    // Pebble's default 5% nonce rejection stays on.
    pebble = await startPebble({ dnsServer: dns.address, httpPort: edge.httpPort, tlsPort: edge.httpsPort });
  });
  afterAll(async () => {
    await pebble?.stop();
    unsubscribe?.();
    await edge?.close();
    await dns?.close();
    await store?.close();
  });

  it('issues with tls-alpn-01 only, answered by the edge’s HTTPS listener; the chain verifies against Pebble’s root', async () => {
    const rig = await openCertificateRig(store, dns, {
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
      PORTICO_ACME_CA_FILE: pebble.caFile,
      PORTICO_ACME_CHALLENGE: 'tls-alpn-01',
    });
    certificates = rig.reader;
    const hostname = name();
    await rig.addVerified(hostname);
    await rig.drain();

    const domain = await rig.read(hostname);
    expect(domain.status, JSON.stringify(domain)).toBe('active');
    expect(domain.certificate).toMatchObject({
      status: 'issued',
      issuer: pebble.directoryUrl,
      last_error: null,
    });
    // Pebble validated in a TLS handshake with the edge, which had the answer; nothing asked HTTP-01.
    expect(challenges.lookups).toContainEqual({ type: 'tls-alpn-01', key: hostname, answered: true });
    expect(challenges.lookups.filter((lookup) => lookup.type === 'http-01')).toEqual([]);
    // The answer is gone from the store, and the edge presents no challenge certificate any more.
    expect(await store.findChallenge(tlsAlpnChallengeKey(hostname))).toBeUndefined();
    // (Read off the wire: the edge refuses the handshake with a handshake_failure alert, before any
    // certificate, whatever the runtime's OpenSSL calls that.)
    expect(
      await tlsExchange({
        host: '127.0.0.1',
        port: edge.httpsPort,
        servername: hostname,
        ALPNProtocols: ['acme-tls/1'],
        rejectUnauthorized: false,
      }),
    ).toMatchObject(refusedWith(TLS_ALERT.handshake_failure));

    // A browser-like client trusting only Pebble's root gets the issued chain from the edge and
    // verifies it (leaf for the name, intermediate, root).
    const rootPem = await pebble.rootPem();
    const root = new X509Certificate(rootPem);
    const chain = await handshake(edge.httpsPort, hostname, { ca: rootPem, ALPNProtocols: ['http/1.1'] });
    const [leaf, intermediate] = chain;
    expect(leaf?.subjectAltName).toBe(`DNS:${hostname}`);
    expect(
      leaf && intermediate && leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey),
    ).toBe(true);
    expect(intermediate?.checkIssued(root) && intermediate.verify(root.publicKey)).toBe(true);
    await rig.api.close();
  });

  /** A recording `ChallengeStore` over the store, as the worker's issuer uses it. */
  const recordingStore = () => {
    const inner = storeChallenges(store, systemClock);
    const puts: string[] = [];
    const recording: ChallengeStore = {
      put: (key, keyAuthorization) => {
        puts.push(key);
        return inner.put(key, keyAuthorization);
      },
      remove: (key) => inner.remove(key),
    };
    return { puts, recording };
  };
  let accountKey: string | undefined;
  const accountKeys: AccountKeyStore = {
    get: async () => accountKey,
    putIfAbsent: async (key) => {
      accountKey ??= key;
      return accountKey;
    },
  };

  it.each([
    [['tls-alpn-01', 'http-01'], 'tls-alpn-01'],
    [['http-01', 'tls-alpn-01'], 'http-01'],
  ] as const)('with the preference %j, answers %s: the first type the CA offers', async (types, used) => {
    // Pebble offers both types for every name, and the edge answers both.
    const hostname = name();
    dns.set(hostname, 'A', '127.0.0.1');
    const { puts, recording } = recordingStore();
    const issuer = new AcmeIssuer({
      directoryUrl: pebble.directoryUrl,
      caFile: pebble.caFile,
      accountKeys,
      challenges: recording,
      challengeTypes: types,
      backoffMinMs: 20,
      backoffMaxMs: 200,
    });
    const before = challenges.lookups.length;
    const issued = await issuer.issue([hostname]);
    expect(new X509Certificate(issued.certificatePem).subjectAltName).toBe(`DNS:${hostname}`);

    const seen = challenges.lookups.slice(before).filter((lookup) => lookup.answered);
    if (used === 'tls-alpn-01') {
      expect(puts).toEqual([tlsAlpnChallengeKey(hostname)]);
      expect(seen).toContainEqual({ type: 'tls-alpn-01', key: hostname, answered: true });
    } else {
      expect(puts).toHaveLength(1);
      expect(puts[0]).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(seen).toContainEqual({ type: 'http-01', key: puts[0], answered: true });
    }
    expect(seen.every((lookup) => lookup.type === used)).toBe(true);
    expect(await store.findChallenge(puts[0] ?? '')).toBeUndefined();
  });
});
