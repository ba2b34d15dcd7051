import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueJobKey } from '../../../src/acme/certificates.js';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * Issuance as `serve` runs it, against Pebble (Let's Encrypt's test CA, Debian's package): the
 * worker orders, the HTTP-01 answers live in the store and are served from it (by a minimal
 * responder standing in for the edge, which answers from the same store), Pebble validates over
 * loopback against names the test DNS server resolves.
 */
describe.each(backends)('certificates over ACME on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let pebble: Pebble;
  let counter = 0;
  const name = () => `shop${++counter}.acme-${backend.name}.com`;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    // Pebble's default 5% nonce rejection stays on: issuance must ride it out.
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
  });
  afterAll(async () => {
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
    await store?.close();
  });

  const acmeEnv = () => ({
    PORTICO_TLS_ISSUER: 'acme',
    PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
    PORTICO_ACME_CA_FILE: pebble.caFile,
  });

  it('issues for several domains end to end; chains verify against Pebble’s root', async () => {
    const rig = await openCertificateRig(store, dns, acmeEnv());
    const names = [name(), name(), name()];
    for (const hostname of names) await rig.addVerified(hostname);
    await rig.drain();
    const root = new X509Certificate(await pebble.rootPem());
    for (const hostname of names) {
      const domain = await rig.read(hostname);
      expect(domain.status, hostname).toBe('active');
      expect(domain.certificate).toMatchObject({
        status: 'issued',
        issuer: pebble.directoryUrl,
        last_error: null,
      });
      const servable = await rig.reader.certificate(hostname);
      const [leaf, intermediate] = (
        servable?.certificatePem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
      ).map((pem) => new X509Certificate(pem));
      expect(leaf?.subjectAltName).toBe(`DNS:${hostname}`);
      expect(
        leaf && intermediate && leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey),
      ).toBe(true);
      expect(intermediate?.checkIssued(root) && intermediate.verify(root.publicKey)).toBe(true);
      expect(
        leaf?.checkPrivateKey((await import('node:crypto')).createPrivateKey(servable?.privateKeyPem ?? '')),
      ).toBe(true);
    }
    // The account key was made once, kept encrypted, and every answer was cleaned up.
    const account = await store.findSetting(`acme_account_key:${pebble.directoryUrl}`);
    expect(account).toMatch(/^v1\./);
    expect(
      responder.requests
        .filter((r) => r.answered)
        .map((r) => r.host)
        .sort(),
    ).toEqual(expect.arrayContaining(names.sort()));
    await rig.api.close();
  });

  it('a challenge that fails is reported in plain words, retried later, and succeeds once DNS is fixed', async () => {
    const rig = await openCertificateRig(store, dns, acmeEnv());
    const hostname = name();
    await rig.addVerified(hostname);
    // The customer's CNAME now leads somewhere nothing listens: the CA cannot fetch the answer.
    dns.set(hostname, 'CNAME', `broken.${hostname}`);
    dns.set(`broken.${hostname}`, 'A', '127.0.0.2');
    await rig.drain();

    const failed = await rig.read(hostname);
    expect(failed.status).toBe('verified');
    expect(failed.certificate.status).toBe('failed');
    expect(failed.certificate.last_error).toMatch(/127\.0\.0\.2/);
    expect(failed.certificate.last_error).toMatch(/refused|connect/i);
    const job = await store.findJob(issueJobKey(hostname));
    expect(job?.lastError).toBe(failed.certificate.last_error);
    expect(Date.parse(job?.runAt ?? '')).toBeGreaterThan(rig.clock.now().getTime());

    dns.set(hostname, 'CNAME', rig.config.cnameTarget);
    rig.clock.advance((Date.parse(job?.runAt ?? '') - rig.clock.now().getTime()) / 1000);
    await rig.drain();
    expect(await rig.read(hostname)).toMatchObject({
      status: 'active',
      certificate: { status: 'issued', last_error: null },
    });
    expect(rig.events).toContainEqual({ hostname, event: 'certificate.failed' });
    await rig.api.close();
  });

  it('rides out a CA outage: failures are retried, nothing is failed or moved, active once the CA is back', async () => {
    const rig = await openCertificateRig(store, dns, acmeEnv());
    const hostname = name();
    await pebble.pause();
    let paused = true;
    try {
      await rig.addVerified(hostname);
      await rig.drain();
      const during = await rig.read(hostname);
      expect(during.status).toBe('verified');
      expect(during.certificate.status).toBe('failed');
      expect(during.certificate.last_error).toMatch(/reach|connect|refused|network/i);
      // A retryable failure: tried again within minutes, not hours.
      const job = await store.findJob(issueJobKey(hostname));
      expect(Date.parse(job?.runAt ?? '') - rig.clock.now().getTime()).toBeLessThanOrEqual(5 * 60_000);
      // Re-verification meanwhile holds nothing against the domain.
      rig.clock.advance(6 * 3600);
      await pebble.resume();
      paused = false;
      await rig.drain();
    } finally {
      // The other tests of this file need the CA, whatever happened here.
      if (paused) await pebble.resume();
    }
    expect(await rig.read(hostname)).toMatchObject({
      status: 'active',
      certificate: { status: 'issued', last_error: null },
    });
    await rig.api.close();
  });

  it('holds orders past the per-account rate limit instead of tripping the CA’s', async () => {
    const rig = await openCertificateRig(store, dns, { ...acmeEnv(), PORTICO_ISSUANCE_RATE_PER_HOUR: '2' });
    const since = new Date(rig.clock.now().getTime() - 3600_000).toISOString();
    // The rig's app queued an order for its default hostname: let it take its turn first, so it
    // is counted below rather than racing the domains for the limit.
    await rig.drain();
    const placedBefore = await store.countCertificateOrders(since, 'placed');
    const names = [name(), name(), name()];
    for (const hostname of names) await rig.addVerified(hostname);
    await rig.drain();
    const statuses = await Promise.all(names.map(async (hostname) => (await rig.read(hostname)).status));
    // Earlier tests in this file placed orders within the hour too; the limit counts them all.
    const allowed = Math.max(0, 2 - placedBefore);
    expect(statuses.filter((status) => status === 'active')).toHaveLength(allowed);
    const waiting = await Promise.all(names.map((hostname) => store.findJob(issueJobKey(hostname))));
    expect(waiting.filter((job) => job?.lastError?.startsWith('waiting'))).toHaveLength(3 - allowed);
    await rig.api.close();
  });

  it.runIf(backend.name === 'postgres')(
    'two workers issue 20 domains with exactly 20 orders finalized',
    async () => {
      const rig = await openCertificateRig(
        store,
        dns,
        { ...acmeEnv(), PORTICO_ISSUANCE_RATE_PER_HOUR: '1000' },
        { workers: 2 },
      );
      const since = new Date(0).toISOString();
      const names = Array.from({ length: 20 }, () => name());
      for (const hostname of names) await rig.addVerified(hostname);
      await rig.drain();
      // One order placed and finalized per domain, whichever of the two workers took it.
      for (const hostname of names) {
        expect((await rig.read(hostname)).status, hostname).toBe('active');
        expect(await store.countCertificateOrders(since, 'placed', hostname), hostname).toBe(1);
        expect(await store.countCertificateOrders(since, 'issued', hostname), hostname).toBe(1);
      }
      await rig.api.close();
    },
  );
});
