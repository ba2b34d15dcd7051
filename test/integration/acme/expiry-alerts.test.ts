import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expiringJobKey } from '../../../src/acme/certificates.js';
import type { Store } from '../../../src/store/store.js';
import { type AcmeFront, startAcmeFront } from '../../helpers/acme-front.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * `certificate.expiring` and the metrics by fraction of lifetime left, on the simulated clock the
 * worker tests use (test/helpers/clock.ts): a certificate whose renewals keep failing is announced
 * once, when less than a sixth of its lifetime is left; one whose renewal succeeds never is.
 */

/** A webhook receiver on loopback that keeps every event it is sent. */
async function startReceiver() {
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      events.push(JSON.parse(body));
      res.writeHead(200).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    events,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

type Rig = Awaited<ReturnType<typeof openCertificateRig>>;

/** `portico_certificates_lifetime_left{below}` and the least fraction left, as a scrape reads them. */
async function lifetimeMetrics(rig: Rig) {
  const registry = rig.services.metrics?.registry;
  const below = await registry?.getSingleMetric('portico_certificates_lifetime_left')?.get();
  const least = await registry?.getSingleMetric('portico_certificate_least_lifetime_left_ratio')?.get();
  return {
    below: Object.fromEntries((below?.values ?? []).map((v) => [String(v.labels.below), v.value])),
    least: least?.values[0]?.value,
  };
}

describe.each(backends)('certificate.expiring when renewals keep failing, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let pebble: Pebble;
  let front: AcmeFront;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
    // A test double in front of Pebble plays the CA's outage (test/helpers/acme-front.ts).
    front = await startAcmeFront(pebble, {});
  });
  afterAll(async () => {
    await front?.close();
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
    await store?.close();
  });

  it('announces each unrenewed certificate once, below a sixth of its lifetime; the metrics count by fraction left', async () => {
    const rig = await openCertificateRig(store, dns, {
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: front.directoryUrl,
      PORTICO_ACME_CA_FILE: front.caFile,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    });
    const receiver = await startReceiver();
    const hook = await rig.api.call(rig.key, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['certificate.expiring'],
    });
    expect(hook.statusCode).toBe(200);
    const [first, second] = [`a.expiring-${backend.name}.test`, `b.expiring-${backend.name}.test`];
    await rig.addVerified(first);
    await rig.addVerified(second);
    await rig.drain();
    const issued = (await rig.read(first)).certificate;
    expect(issued.status).toBe('issued');
    // As if the second had been issued before alerts existed: no alert is scheduled for it.
    await store.deleteJob(expiringJobKey(second));
    expect(await store.findJob(expiringJobKey(first))).toBeDefined();

    // Both were issued together: one lifetime for the two.
    const [from, until] = [Date.parse(issued.not_before), Date.parse(issued.not_after)];
    const moveTo = (left: number) =>
      rig.clock.advance((until - (until - from) * left - rig.clock.now().getTime()) / 1000);
    expect((await lifetimeMetrics(rig)).below).toEqual({ '0.5': 0, '0.333': 0, '0.167': 0, '0': 0 });

    front.outage(true);
    try {
      // Renewal starts with a third left, and fails while the CA is unreachable.
      moveTo(0.3);
      await rig.drain();
      expect((await rig.read(first)).certificate.last_error_code).toBe('network');
      expect(await lifetimeMetrics(rig)).toEqual({
        below: { '0.5': 2, '0.333': 2, '0.167': 0, '0': 0 },
        least: expect.closeTo(0.3, 2),
      });
      // The failed renewal gave the second its alert.
      expect(await store.findJob(expiringJobKey(second))).toBeDefined();
      moveTo(0.17);
      await rig.drain();
      expect(receiver.events).toHaveLength(0);

      moveTo(0.16);
      await rig.drain();
      expect(receiver.events.map((event) => [event.type, event.data.domain]).sort()).toEqual([
        ['certificate.expiring', first],
        ['certificate.expiring', second],
      ]);
      // The first domain's event: the two arrive in either order, and their certificates may
      // expire a second apart.
      const firstEvent = receiver.events.find((event) => event.data.domain === first);
      expect(firstEvent?.data.certificate).toMatchObject({
        not_after: issued.not_after,
        lifetime_left: expect.closeTo(0.16, 2),
        last_error_code: 'network',
      });
      expect((await lifetimeMetrics(rig)).below).toEqual({ '0.5': 2, '0.333': 2, '0.167': 2, '0': 0 });

      // Renewals keep failing, checks keep running: nothing is announced again.
      for (const left of [0.1, 0.05, 0.01]) {
        moveTo(left);
        await rig.drain();
      }
      expect(receiver.events).toHaveLength(2);
      expect(rig.events.filter((event) => event.event === 'certificate.expiring')).toHaveLength(2);
      moveTo(-0.01);
      expect((await lifetimeMetrics(rig)).below['0']).toBe(2);
    } finally {
      front.outage(false);
    }
    await receiver.close();
    await rig.api.close();
  });
});

describe.each(backends)('no certificate.expiring when renewal succeeds, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
  });
  afterAll(async () => {
    await dns?.close();
    await store?.close();
  });

  it('a certificate renewed in time is never announced, through three lifetimes (the local CA, on the simulated clock)', async () => {
    const rig = await openCertificateRig(store, dns);
    const hostname = `renewed.expiring-${backend.name}.test`;
    await rig.addVerified(hostname);
    await rig.drain();
    const notAfters = new Set<string>();
    for (let day = 0; day < 3 * 90; day++) {
      rig.clock.advance(86_400);
      await rig.drain();
      notAfters.add((await rig.read(hostname)).certificate.not_after);
      expect((await lifetimeMetrics(rig)).below['0.167'], `day ${day}`).toBe(0);
    }
    // Renewed with a third left: four certificates or more over 270 days of 90-day ones.
    expect(notAfters.size).toBeGreaterThanOrEqual(4);
    expect(rig.events.filter((event) => event.event === 'certificate.renewed').length).toBeGreaterThanOrEqual(
      3,
    );
    expect(rig.events.filter((event) => event.event === 'certificate.expiring')).toHaveLength(0);
    await rig.api.close();
  });
});
