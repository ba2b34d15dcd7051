import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { type AcmeFront, startAcmeFront } from '../../helpers/acme-front.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * Several CAs (`PORTICO_ACME_DIRECTORY` as a list): two real Pebbles, each behind the front of
 * test/helpers/acme-front.ts, which passes everything through and only counts the orders each CA
 * took (and, for the 429 case, refuses new orders as a CA under load does). The first CA stopped,
 * then rate limiting: the order goes to the second in the same attempt. A failure of the
 * customer's (DNS) is not taken to the second CA. CAA is judged per CA, by the identities each
 * directory lists (the fronts add them). The second CA requires external account binding, which
 * only it is given (PORTICO_ACME_EAB_* aligned with the directories).
 */
const EAB = { kid: 'portico-test-kid', hmacKey: randomBytes(32).toString('base64url') };

describe.each(backends)('ordering from the next CA when the first fails on its side, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let first: Pebble;
  let second: Pebble;
  let firstFront: AcmeFront;
  let secondFront: AcmeFront;
  let caBundle: string;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    // The second CA requires external account binding, as commercial ACME CAs do.
    [first, second] = await Promise.all([
      startPebble({ dnsServer: dns.address, httpPort: responder.port }),
      startPebble({ dnsServer: dns.address, httpPort: responder.port, externalAccountBinding: EAB }),
    ]);
    // Each CA names itself in its directory (Pebble lists no caaIdentities: the fronts add them).
    [firstFront, secondFront] = await Promise.all([
      startAcmeFront(first, { caaIdentities: ['first-ca.test'] }),
      startAcmeFront(second, { caaIdentities: ['second-ca.test'] }),
    ]);
    // One PORTICO_ACME_CA_FILE trusts both fronts' HTTPS.
    caBundle = path.join(tmpdir(), `portico-ca-bundle-${process.pid}-${backend.name}.pem`);
    const pems = await Promise.all(
      [firstFront.caFile, secondFront.caFile].map((file) => readFile(file, 'utf8')),
    );
    await writeFile(caBundle, pems.join('\n'));
  });
  afterAll(async () => {
    await firstFront?.close();
    await secondFront?.close();
    await first?.stop();
    await second?.stop();
    await responder?.close();
    await dns?.close();
    await store?.close();
    if (caBundle) await rm(caBundle, { force: true });
  });

  it('issues from the second CA while the first is stopped, then while it answers 429; CAA is judged per CA; a DNS failure stays with the first', async () => {
    const rig = await openCertificateRig(store, dns, {
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: `${firstFront.directoryUrl},${secondFront.directoryUrl}`,
      PORTICO_ACME_CA_FILE: caBundle,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      // None for the first CA (an empty entry), the binding for the second.
      PORTICO_ACME_EAB_KID: `,${EAB.kid}`,
      PORTICO_ACME_EAB_HMAC_KEY: `,${EAB.hmacKey}`,
    });
    const failedEvents = (hostname: string) =>
      rig.events.filter((event) => event.hostname === hostname && event.event === 'certificate.failed');

    // The first CA is stopped (its front answers 502 for it, as a load balancer would).
    const stopped = `stopped.failover-${backend.name}.test`;
    await first.pause();
    try {
      await rig.addVerified(stopped);
      await rig.drain();
    } finally {
      await first.resume();
    }
    const fromSecond = (await rig.read(stopped)).certificate;
    expect(fromSecond).toMatchObject({ status: 'issued', issuer: secondFront.directoryUrl });
    expect(secondFront.ordersFor(stopped)).toBe(1);
    expect(failedEvents(stopped)).toHaveLength(0);
    expect((await rig.read(stopped)).status).toBe('active');

    // The first CA is back, and issues as the preferred one.
    const back = `back.failover-${backend.name}.test`;
    await rig.addVerified(back);
    await rig.drain();
    expect((await rig.read(back)).certificate).toMatchObject({
      status: 'issued',
      issuer: firstFront.directoryUrl,
    });
    expect(secondFront.ordersFor(back)).toBe(0);

    // The first CA rate limits new orders: the second takes it, in the same attempt.
    const limited = `limited.failover-${backend.name}.test`;
    const newOrders = () => firstFront.requests.filter((r) => r.method === 'POST' && r.path === '/order-plz');
    const before = newOrders().length;
    firstFront.refuseOrders(429, 3600);
    try {
      await rig.addVerified(limited);
      await rig.drain();
    } finally {
      firstFront.refuseOrders(undefined);
    }
    expect(newOrders().length).toBeGreaterThan(before);
    expect(firstFront.ordersFor(limited)).toBe(0);
    expect((await rig.read(limited)).certificate).toMatchObject({
      status: 'issued',
      issuer: secondFront.directoryUrl,
    });
    expect(failedEvents(limited)).toHaveLength(0);

    // CAA allows the second CA only: the first is not asked.
    const parent = `caa.failover-${backend.name}.test`;
    const onlySecond = `shop.${parent}`;
    dns.set(parent, 'CAA', '0 issue "second-ca.test"');
    await rig.addVerified(onlySecond);
    await rig.drain();
    expect((await rig.read(onlySecond)).certificate).toMatchObject({
      status: 'issued',
      issuer: secondFront.directoryUrl,
    });
    expect(firstFront.ordersFor(onlySecond)).toBe(0);
    // CAA allows neither: no order anywhere, and the error names what each CA was refused.
    const forbidding = `forbidding.failover-${backend.name}.test`;
    const neither = `shop.${forbidding}`;
    dns.set(forbidding, 'CAA', '0 issue "elsewhere.test"');
    await rig.addVerified(neither);
    await rig.drain();
    const forbidden = (await rig.read(neither)).certificate;
    expect(forbidden).toMatchObject({ status: 'failed', last_error_code: 'caa_forbidden' });
    expect(forbidden.last_error).toContain('first-ca.test');
    expect(forbidden.last_error).toContain('second-ca.test');
    expect(firstFront.ordersFor(neither) + secondFront.ordersFor(neither)).toBe(0);

    // The customer's DNS no longer leads to the edge: the first CA refuses, the second is not asked.
    const broken = `broken.failover-${backend.name}.test`;
    await rig.addVerified(broken);
    dns.remove(broken);
    await rig.drain();
    const refused = (await rig.read(broken)).certificate;
    expect(refused.status).toBe('failed');
    expect(['dns_problem', 'challenge_failed', 'unauthorized']).toContain(refused.last_error_code);
    expect(firstFront.ordersFor(broken)).toBe(1);
    expect(secondFront.ordersFor(broken)).toBe(0);
    await rig.api.close();
  });
});
