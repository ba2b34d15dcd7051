import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REVOCATION_ATTEMPTS, REVOKE_JOB } from '../../../src/acme/certificates.js';
import type { Store } from '../../../src/store/store.js';
import { type AcmeFront, startAcmeFront } from '../../helpers/acme-front.js';
import { createTestApp } from '../../helpers/api.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * Certificates of names that leave are revoked at the CA before their keys are deleted, against a
 * real Pebble: what it did is read from its management interface (`/cert-status-by-serial/…`).
 * The CA is reached through a test double in front of it (test/helpers/acme-front.ts), which passes
 * everything through and plays the CA outages: a stopped Pebble forgets what it issued.
 */
describe.each(backends)('revocation of certificates whose name left, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let pebble: Pebble;
  let front: AcmeFront;
  let counter = 0;
  const name = () => `shop${++counter}.revoke-${backend.name}.test`;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
    front = await startAcmeFront(pebble, {});
  });
  afterAll(async () => {
    await front?.close();
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
    await store?.close();
  });

  const open = () =>
    openCertificateRig(store, dns, {
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: front.directoryUrl,
      PORTICO_ACME_CA_FILE: front.caFile,
    });
  type Rig = Awaited<ReturnType<typeof open>>;

  /** A domain served with a certificate from Pebble; answers the certificate's serial. */
  const activate = async (rig: Rig, hostname: string, owner?: { key: string; appId: string }) => {
    await rig.addVerified(hostname, '127.0.0.1', owner);
    await rig.drain();
    expect((await rig.read(hostname, owner)).status).toBe('active');
    const served = await rig.reader.certificate(hostname);
    if (!served) throw new Error(`no certificate served for ${hostname}`);
    return new X509Certificate(served.certificatePem).serialNumber;
  };
  const revocationsMetric = async (rig: Rig, outcome: string) => {
    const metric = await rig.services.metrics?.certificateRevocations.get();
    return metric?.values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
  };

  it('a removed domain: the API answers at once, the edge stops serving it, and the CA revokes it (cessationOfOperation) before the key is deleted', async () => {
    const rig = await open();
    const hostname = name();
    const serial = await activate(rig, hostname);
    const pendingBefore = await store.countCertificateRevocations();

    const removed = await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${hostname}`);
    expect(removed.statusCode).toBe(200);
    // Acknowledged: the edge serves nothing for it, and its revocation (with the sealed key) is in the store.
    expect(await rig.reader.certificate(hostname)).toBeUndefined();
    expect(await store.countCertificateRevocations()).toBe(pendingBefore + 1);
    expect(await pebble.certificateStatus(serial)).toEqual({ status: 'Valid', reason: undefined });

    await rig.drain();
    expect(await pebble.certificateStatus(serial)).toEqual({ status: 'Revoked', reason: 5 });
    expect(await store.countCertificateRevocations()).toBe(pendingBefore);
    expect(await revocationsMetric(rig, 'revoked')).toBe(1);
    await rig.api.close();
  });

  it('a hand-over: the claim that lost the name has its certificate revoked as superseded; the new owner gets its own', async () => {
    const rig = await open();
    const hostname = name();
    const serial = await activate(rig, hostname);
    const other = { key: await rig.api.keyFor('revoke-other-org'), appId: '' };
    other.appId = await createTestApp(rig.api, other.key);

    const newSerial = await activate(rig, hostname, other);
    expect((await rig.read(hostname)).status).toBe('moved');
    expect(newSerial).not.toBe(serial);
    expect(await pebble.certificateStatus(serial)).toEqual({ status: 'Revoked', reason: 4 });
    expect(await pebble.certificateStatus(newSerial)).toMatchObject({ status: 'Valid' });
    await rig.api.close();
  });

  it('ownership lost (its record gone on three checks): revoked as cessationOfOperation', async () => {
    const rig = await open();
    const hostname = name();
    const serial = await activate(rig, hostname);
    dns.remove(`_mixpeek-verify.${hostname}`, 'TXT');
    for (let check = 0; check < 10 && (await rig.read(hostname)).status !== 'moved'; check++) {
      rig.clock.advance(rig.config.reverifyIntervalSeconds);
      await rig.drain();
    }
    expect((await rig.read(hostname)).status).toBe('moved');
    expect(await pebble.certificateStatus(serial)).toEqual({ status: 'Revoked', reason: 5 });
    await rig.api.close();
  });

  it('rides out a CA outage: the removal is not held up, the revocation is retried and done once the CA is back', async () => {
    const rig = await open();
    const hostname = name();
    const serial = await activate(rig, hostname);
    const pendingBefore = await store.countCertificateRevocations();
    front.outage(true);
    try {
      const removed = await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${hostname}`);
      expect(removed.statusCode).toBe(200);
      await rig.drain();
      // Tried, failed, still waiting with its key kept.
      expect(await revocationsMetric(rig, 'retrying')).toBe(1);
      expect(await store.countCertificateRevocations()).toBe(pendingBefore + 1);
      expect(await store.countJobs(REVOKE_JOB)).toBe(1);
    } finally {
      front.outage(false);
    }
    // The next try is a minute later, not at once.
    await rig.drain();
    expect(await pebble.certificateStatus(serial)).toMatchObject({ status: 'Valid' });
    rig.clock.advance(60);
    await rig.drain();
    expect(await pebble.certificateStatus(serial)).toEqual({ status: 'Revoked', reason: 5 });
    expect(await store.countCertificateRevocations()).toBe(pendingBefore);
    await rig.api.close();
  });

  it(`gives up after ${MAX_REVOCATION_ATTEMPTS} tries, deleting the key all the same (logged and counted)`, async () => {
    const rig = await open();
    const hostname = name();
    const serial = await activate(rig, hostname);
    const pendingBefore = await store.countCertificateRevocations();
    front.outage(true);
    try {
      await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${hostname}`);
      for (let tries = 0; tries < MAX_REVOCATION_ATTEMPTS; tries++) {
        await rig.drain();
        // To the next try: at most the 6-hour cap of the backoff.
        rig.clock.advance(6 * 3600);
      }
      await rig.drain();
    } finally {
      front.outage(false);
    }
    expect(await store.countCertificateRevocations()).toBe(pendingBefore);
    expect(await revocationsMetric(rig, 'given_up')).toBe(1);
    expect(await revocationsMetric(rig, 'retrying')).toBe(MAX_REVOCATION_ATTEMPTS - 1);
    expect(await pebble.certificateStatus(serial)).toMatchObject({ status: 'Valid' });
    await rig.api.close();
  });
});

describe.each(backends)('the local CA has nothing to revoke, on $name', (backend) => {
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

  it('a removed domain’s certificate and key are deleted at once, with nothing queued', async () => {
    const rig = await openCertificateRig(store, dns);
    const hostname = 'shop.local-ca.test';
    await rig.addVerified(hostname);
    await rig.drain();
    expect((await rig.read(hostname)).certificate.issuer).toBe('internal');
    await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${hostname}`);
    expect(await store.findCertificate(hostname)).toBeUndefined();
    expect(await store.countCertificateRevocations()).toBe(0);
    expect(await store.countJobs(REVOKE_JOB)).toBe(0);
    await rig.api.close();
  });
});
