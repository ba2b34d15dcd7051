import type { SecureContext } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCertificate } from '../../test/helpers/certs.js';
import { certificateCacheBytes, SniCache } from './sni-cache.js';
import type { CertificateSource, EdgeCertificate } from './sources.js';

let certificate: TestCertificate;
let renewed: TestCertificate;
/** Certificates of three other names, for the memory bound. */
let others: Map<string, TestCertificate>;

beforeAll(async () => {
  const ca = await createTestCa();
  certificate = await ca.issue(['shop.acme.test']);
  renewed = await ca.issue(['shop.acme.test']);
  others = new Map();
  for (const name of ['a.acme.test', 'b.acme.test', 'c.acme.test']) others.set(name, await ca.issue([name]));
});

/** Counts reads per name; reads wait until `open()` when the source is created closed. */
class CountingSource implements CertificateSource {
  readonly reads: string[] = [];
  readonly served = new Map<string, EdgeCertificate>();
  failure: Error | undefined;
  private gate: Promise<void>;
  private openGate: () => void = () => {};

  constructor(closed = false) {
    this.gate = closed
      ? new Promise((resolve) => {
          this.openGate = resolve;
        })
      : Promise.resolve();
  }

  open(): void {
    this.openGate();
  }

  async certificate(hostname: string): Promise<EdgeCertificate | undefined> {
    this.reads.push(hostname);
    await this.gate;
    if (this.failure) throw this.failure;
    return this.served.get(hostname);
  }
}

function handshake(
  cache: SniCache,
  servername: string,
): Promise<{ error: Error | null; context?: SecureContext }> {
  return new Promise((resolve) =>
    cache.callback(servername, (error, context) => resolve({ error, context })),
  );
}

describe('SniCache', () => {
  it('loads a name once for concurrent handshakes and answers later ones from memory', async () => {
    const source = new CountingSource(true);
    source.served.set('shop.acme.test', certificate);
    const cache = new SniCache({ certificates: source });
    const handshakes = Array.from({ length: 20 }, () => handshake(cache, 'shop.acme.test'));
    source.open();
    const results = await Promise.all(handshakes);
    expect(source.reads).toEqual(['shop.acme.test']);
    expect(new Set(results.map((result) => result.context)).size).toBe(1);
    expect(results[0]?.context).toBeDefined();

    let answeredSynchronously = false;
    cache.callback('shop.acme.test', () => {
      answeredSynchronously = true;
    });
    expect(answeredSynchronously).toBe(true);
  });

  it('normalizes the SNI name before looking it up', async () => {
    const source = new CountingSource();
    source.served.set('shop.acme.test', certificate);
    const cache = new SniCache({ certificates: source });
    expect((await handshake(cache, 'SHOP.acme.test.')).context).toBeDefined();
    expect(source.reads).toEqual(['shop.acme.test']);
  });

  it('gives an unknown name no context (the handshake fails) and remembers that briefly', async () => {
    const source = new CountingSource();
    const cache = new SniCache({ certificates: source });
    expect(await handshake(cache, 'nobody.test')).toEqual({ error: null, context: undefined });
    expect(await handshake(cache, 'nobody.test')).toEqual({ error: null, context: undefined });
    expect(source.reads).toEqual(['nobody.test']);
  });

  it('reflects a removed name at once after invalidate', async () => {
    const source = new CountingSource();
    source.served.set('shop.acme.test', certificate);
    const cache = new SniCache({ certificates: source });
    expect((await handshake(cache, 'shop.acme.test')).context).toBeDefined();
    source.served.delete('shop.acme.test');
    expect((await handshake(cache, 'shop.acme.test')).context).toBeDefined();
    cache.invalidate('Shop.Acme.Test');
    expect((await handshake(cache, 'shop.acme.test')).context).toBeUndefined();
  });

  it('never keeps a certificate past its notAfter', async () => {
    const source = new CountingSource();
    const clock = { now: Date.now() };
    source.served.set('shop.acme.test', { ...certificate, notAfter: new Date(clock.now + 10_000) });
    const cache = new SniCache({ certificates: source, ttlMs: 3_600_000, now: () => clock.now });
    await handshake(cache, 'shop.acme.test');
    clock.now += 10_000;
    await handshake(cache, 'shop.acme.test');
    expect(source.reads).toHaveLength(2);
  });

  it('fails the handshake with the error when the source fails and nothing is cached', async () => {
    const source = new CountingSource();
    source.failure = new Error('database down');
    const failures: string[] = [];
    const cache = new SniCache({ certificates: source, onLoadError: (hostname) => failures.push(hostname) });
    const result = await handshake(cache, 'shop.acme.test');
    expect(result.error?.message).toBe('database down');
    expect(failures).toEqual(['shop.acme.test']);
  });

  it('keeps the certificates that fit in maxBytes, the least recently used evicted first', async () => {
    const source = new CountingSource();
    for (const [name, issued] of others) source.served.set(name, issued);
    const weights = [...others.values()].map((issued) => certificateCacheBytes(issued));
    let built = 0;
    // Room for two of them, not three.
    const cache = new SniCache({
      certificates: source,
      maxBytes: Math.max(...weights) * 2,
      onContextBuilt: () => built++,
    });
    for (const name of ['a.acme.test', 'b.acme.test', 'a.acme.test', 'c.acme.test']) {
      expect((await handshake(cache, name)).context).toBeDefined();
    }
    // a was used after b, so b went when c came.
    expect(source.reads).toEqual(['a.acme.test', 'b.acme.test', 'c.acme.test']);
    expect(built).toBe(3);
    await handshake(cache, 'a.acme.test');
    await handshake(cache, 'c.acme.test');
    expect(source.reads).toHaveLength(3);
    expect((await handshake(cache, 'b.acme.test')).context).toBeDefined();
    expect(source.reads.at(-1)).toBe('b.acme.test');
    expect(built).toBe(4);
  });

  it('counts a certificate as at least a TLS context, and a longer chain or key as more', () => {
    const weight = certificateCacheBytes(certificate);
    expect(weight).toBeGreaterThan(certificate.certificatePem.length + certificate.privateKeyPem.length);
    const longer = { ...certificate, certificatePem: certificate.certificatePem.repeat(2) };
    expect(certificateCacheBytes(longer)).toBe(weight + certificate.certificatePem.length);
  });

  it('keeps the TLS context when a reload finds the same certificate, and builds one for a renewed certificate', async () => {
    const source = new CountingSource();
    const clock = { now: Date.now() };
    source.served.set('shop.acme.test', certificate);
    const cache = new SniCache({ certificates: source, ttlMs: 1_000, now: () => clock.now });
    const first = (await handshake(cache, 'shop.acme.test')).context;
    clock.now += 1_000;
    const reloaded = (await handshake(cache, 'shop.acme.test')).context;
    expect(source.reads).toHaveLength(2);
    expect(reloaded).toBe(first);
    source.served.set('shop.acme.test', renewed);
    clock.now += 1_000;
    const afterRenewal = (await handshake(cache, 'shop.acme.test')).context;
    expect(source.reads).toHaveLength(3);
    expect(afterRenewal).toBeDefined();
    expect(afterRenewal).not.toBe(first);
  });

  it('reads a certificate in use again in the last tenth of its life without holding a handshake', async () => {
    const source = new CountingSource();
    const clock = { now: Date.now() };
    source.served.set('shop.acme.test', certificate);
    const cache = new SniCache({ certificates: source, ttlMs: 1_000, now: () => clock.now });
    const first = (await handshake(cache, 'shop.acme.test')).context;
    clock.now += 900;
    let answered: SecureContext | undefined;
    cache.callback('shop.acme.test', (_error, context) => {
      answered = context;
    });
    // Answered at once, from memory, while the store is read again.
    expect(answered).toBe(first);
    expect(source.reads).toHaveLength(2);
  });

  it('builds one context for names served by one certificate (the names under a wildcard claim)', async () => {
    const source = new CountingSource();
    // The same chain and key for three names, as the edge reads a wildcard's for each name under it.
    for (const name of ['x.acme.test', 'y.acme.test', 'z.acme.test']) source.served.set(name, certificate);
    source.served.set('a.acme.test', others.get('a.acme.test') as TestCertificate);
    let built = 0;
    const cache = new SniCache({ certificates: source, onContextBuilt: () => built++ });
    const x = await handshake(cache, 'x.acme.test');
    const y = await handshake(cache, 'y.acme.test');
    const a = await handshake(cache, 'a.acme.test');
    expect(built).toBe(2);
    expect(y.context).toBe(x.context);
    expect(a.context).not.toBe(x.context);
    // Held while any name holds it: with x and y forgotten it is built again, once.
    cache.invalidate('x.acme.test');
    expect((await handshake(cache, 'z.acme.test')).context).toBe(x.context);
    cache.invalidate('y.acme.test');
    cache.invalidate('z.acme.test');
    const again = await handshake(cache, 'x.acme.test');
    expect(built).toBe(3);
    expect(again.context).not.toBe(x.context);
  });
});
