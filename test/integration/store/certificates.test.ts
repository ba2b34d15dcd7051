import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateRecord, Store } from '../../../src/store/store.js';
import { backends } from '../../helpers/stores.js';

/** The certificate part of the store contract (src/store/store.ts), on both implementations. */
describe.each(backends)('certificate store on $name', (backend) => {
  let store: Store;
  const t0 = '2026-01-01T00:00:00.000Z';
  const day = (days: number) => new Date(Date.parse(t0) + days * 86_400_000).toISOString();

  beforeAll(async () => {
    store = await backend.open();
  });
  afterAll(async () => {
    await store.close();
  });

  const certificate = (hostname: string, extra: Partial<CertificateRecord> = {}): CertificateRecord => ({
    hostname,
    domainId: null,
    appId: null,
    status: 'issued',
    issuer: 'acme',
    certificatePem: '-----BEGIN CERTIFICATE-----\n…',
    privateKeyEnc: 'v1.sealed',
    notBefore: day(0),
    notAfter: day(90),
    renewAt: day(60),
    lastError: null,
    lastErrorCode: null,
    expiryAlertedAt: null,
    ariWindowStart: null,
    ariWindowEnd: null,
    ariNextPollAt: null,
    caDirectory: null,
    failures: 0,
    createdAt: t0,
    updatedAt: t0,
    ...extra,
  });

  it('pages through the certificates that can be served, in hostname order, never one without a chain', async () => {
    await store.putCertificate(certificate('b.servable.test'));
    await store.putCertificate(certificate('a.servable.test'));
    await store.putCertificate(
      certificate('c.servable.test', { status: 'pending', certificatePem: null, privateKeyEnc: null }),
    );
    await store.putCertificate(certificate('d.servable.test'));
    const names: string[] = [];
    for (let after = ''; ; ) {
      const page = await store.listServableCertificates(after, 2);
      names.push(...page.map((record) => record.hostname));
      if (page.length < 2) break;
      after = page.at(-1)?.hostname ?? '';
    }
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((name) => name.endsWith('.servable.test'))).toEqual([
      'a.servable.test',
      'b.servable.test',
      'd.servable.test',
    ]);
    expect((await store.listServableCertificates('a.servable.test', 1))[0]?.privateKeyEnc).toBe('v1.sealed');
  });

  it('keeps a failure’s code beside its message; a wait clears the code', async () => {
    await store.putCertificate(certificate('codes.store.test', { status: 'pending', certificatePem: null }));
    await store.recordCertificateFailure(
      'codes.store.test',
      'CAA 0 issue "x" at store.test forbids y',
      day(1),
      'caa_forbidden',
    );
    expect(await store.findCertificate('codes.store.test')).toMatchObject({
      status: 'failed',
      lastError: 'CAA 0 issue "x" at store.test forbids y',
      lastErrorCode: 'caa_forbidden',
      failures: 1,
    });
    await store.recordCertificateWait('codes.store.test', 'waiting: 100 orders in the last hour', day(1));
    expect(await store.findCertificate('codes.store.test')).toMatchObject({
      lastError: 'waiting: 100 orders in the last hour',
      lastErrorCode: null,
    });
  });

  it('marks a certificate’s expiry as announced once, for that certificate only', async () => {
    const hostname = 'alert.store.test';
    await store.putCertificate(certificate(hostname));
    expect(await store.markCertificateExpiryAlerted(hostname, day(89), day(80))).toBe(false);
    const marks = await Promise.all(
      [1, 2, 3].map(() => store.markCertificateExpiryAlerted(hostname, day(90), day(80))),
    );
    expect(marks.filter(Boolean)).toHaveLength(1);
    expect((await store.findCertificate(hostname))?.expiryAlertedAt).toBe(day(80));
    // Its renewal replaces the row: the new certificate can be announced in its turn.
    await store.putCertificate(certificate(hostname, { notBefore: day(85), notAfter: day(175) }));
    expect((await store.findCertificate(hostname))?.expiryAlertedAt).toBeNull();
    expect(await store.markCertificateExpiryAlerted(hostname, day(175), day(170))).toBe(true);
  });

  it('keeps the renewal window of the certificate served now, never of one that replaced it', async () => {
    const hostname = 'ari.store.test';
    await store.putCertificate(certificate(hostname, { caDirectory: 'https://ca.test/dir' }));
    const info = { ariWindowStart: day(58), ariWindowEnd: day(60), ariNextPollAt: day(1), renewAt: day(59) };
    // Asked about an older certificate (another notAfter): nothing changes.
    expect(await store.recordCertificateRenewalInfo(hostname, day(89), info)).toBe(false);
    expect(await store.findCertificate(hostname)).toMatchObject({ ariWindowStart: null, renewAt: day(60) });
    expect(await store.recordCertificateRenewalInfo(hostname, day(90), info)).toBe(true);
    expect(await store.findCertificate(hostname)).toMatchObject({
      ...info,
      caDirectory: 'https://ca.test/dir',
    });
    // Its renewal replaces the row, window and all.
    await store.putCertificate(
      certificate(hostname, { notBefore: day(59), notAfter: day(149), renewAt: day(119) }),
    );
    expect(await store.findCertificate(hostname)).toMatchObject({
      ariWindowStart: null,
      ariWindowEnd: null,
      ariNextPollAt: null,
      caDirectory: null,
      renewAt: day(119),
    });
  });

  it('counts issued certificates by the fraction of their lifetime left', async () => {
    const fresh = await backend.open();
    try {
      // At day 60: a 90-day certificate has 1/3 left; a 6-day one from day 55, 1/6; one from day 59, 5/6.
      await fresh.putCertificate(certificate('a.lifetime.test'));
      await fresh.putCertificate(certificate('b.lifetime.test', { notBefore: day(55), notAfter: day(61) }));
      await fresh.putCertificate(certificate('c.lifetime.test', { notBefore: day(59), notAfter: day(65) }));
      await fresh.putCertificate(certificate('d.lifetime.test', { notBefore: day(0), notAfter: day(50) }));
      // Not served: not counted.
      await fresh.putCertificate(
        certificate('e.lifetime.test', {
          status: 'pending',
          certificatePem: null,
          notBefore: null,
          notAfter: null,
        }),
      );
      const stats = await fresh.certificateLifetimeStats(day(60), [0.5, 0.34, 0.17, 0.16, 0]);
      expect(stats.below).toEqual([3, 3, 2, 1, 1]);
      // The one expired ten days ago, of a 50-day lifetime.
      expect(stats.leastLeft).toBeCloseTo(-0.2, 6);
      expect((await fresh.certificateLifetimeStats(day(60), [])).below).toEqual([]);
    } finally {
      await fresh.close();
    }
    const empty = await backend.open();
    try {
      expect(await empty.certificateLifetimeStats(day(60), [0.5])).toEqual({ below: [0], leastLeft: null });
    } finally {
      await empty.close();
    }
  });

  it('keeps a revocation, with its sealed key, until it is deleted', async () => {
    const before = await store.countCertificateRevocations();
    const revocation = {
      id: 'rev_store1',
      hostname: 'gone.store.test',
      issuer: 'acme',
      certificatePem: '-----BEGIN CERTIFICATE-----\n…',
      privateKeyEnc: 'v1.sealed-key',
      reason: 'superseded',
      orgId: 'org_1',
      notAfter: day(90),
      caDirectory: 'https://ca.test/dir',
      createdAt: day(10),
    };
    await store.transaction((tx) => tx.insertCertificateRevocation(revocation));
    expect(await store.findCertificateRevocation('rev_store1')).toEqual(revocation);
    expect(await store.countCertificateRevocations()).toBe(before + 1);
    expect(await store.deleteCertificateRevocation('rev_store1')).toBe(true);
    expect(await store.deleteCertificateRevocation('rev_store1')).toBe(false);
    expect(await store.findCertificateRevocation('rev_store1')).toBeUndefined();
    expect(await store.countCertificateRevocations()).toBe(before);
  });
});
