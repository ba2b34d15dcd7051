import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../../src/domain/ids.js';
import type { DnsChallengeRecord, Store } from '../../../src/store/store.js';
import { Housekeeping } from '../../../src/worker/housekeeping.js';
import { backends } from '../../helpers/stores.js';

/** The DNS-01 challenge records' part of the store contract (DnsChallengeStore), on both stores. */
describe.each(backends)('DNS-01 challenge records on $name', (backend) => {
  let store: Store;
  let other: Store;
  let orgId: string;
  const t0 = '2026-01-01T00:00:00.000Z';
  const at = (seconds: number) => new Date(Date.parse(t0) + seconds * 1000).toISOString();
  const record = (
    label: string,
    value: string,
    extra: Partial<DnsChallengeRecord> = {},
  ): DnsChallengeRecord => ({
    label,
    value,
    domainId: null,
    createdAt: t0,
    expiresAt: at(600),
    ...extra,
  });

  /** The values at one label, as the dns role reads them (a batch of one). */
  const valuesAt = async (from: Store, label: string, now: string) =>
    (await from.listDnsChallengeValues([label], now)).map((row) => row.value);

  beforeAll(async () => {
    // Two stores on one database, as a worker and a dns node have (one store on SQLite).
    [store, other] = await backend.openPair();
    orgId = (await store.ensureOrganization('dns-challenges', newId('org'), t0)).id;
  });
  afterAll(async () => {
    if (other !== store) await other.close();
    await store.close();
  });

  /** A claim to own records: an app and a domain on it. */
  const newClaim = async () => {
    const appId = newId('app');
    await store.insertApp({
      id: appId,
      orgId,
      slug: `s-${appId.slice(4)}`,
      title: 't',
      description: null,
      originUrl: null,
      createdAt: t0,
      updatedAt: t0,
    });
    const id = newId('dom');
    await store.insertDomain({
      id,
      appId,
      orgId,
      name: `${id.slice(4)}.dns-challenges.test`,
      status: 'verified',
      isPrimary: false,
      verificationToken: 'token',
      createdAt: t0,
      updatedAt: t0,
      verifiedAt: t0,
      verifyingSince: null,
      lastCheckedAt: null,
      nextCheckAt: null,
      verificationErrors: [],
      routingObserved: [],
      routingVia: null,
      failureStreak: 0,
      serving: null,
    });
    return { appId, id };
  };

  it('keeps several values at one label, oldest first, and answers them to another connection', async () => {
    expect(await store.putDnsChallenge(record('several', 'for-acme-com', { createdAt: at(1) }))).toBe(true);
    expect(await store.putDnsChallenge(record('several', 'for-wildcard', { createdAt: at(2) }))).toBe(true);
    expect(await store.putDnsChallenge(record('elsewhere', 'other'))).toBe(true);
    expect(await valuesAt(other, 'several', at(3))).toEqual(['for-acme-com', 'for-wildcard']);
    expect(await valuesAt(other, 'nothing-here', at(3))).toEqual([]);
  });

  it('reads several labels at once, each value with its label, oldest first at each', async () => {
    await store.putDnsChallenge(record('batch-a', 'a2', { createdAt: at(2) }));
    await store.putDnsChallenge(record('batch-a', 'a1', { createdAt: at(1) }));
    await store.putDnsChallenge(record('batch-b', 'b1', { createdAt: at(1) }));
    await store.putDnsChallenge(record('batch-b', 'b-expired', { expiresAt: at(3) }));
    const rows = await other.listDnsChallengeValues(['batch-a', 'batch-b', 'batch-none'], at(5));
    expect(rows.filter((row) => row.label === 'batch-a').map((row) => row.value)).toEqual(['a1', 'a2']);
    expect(rows.filter((row) => row.label === 'batch-b').map((row) => row.value)).toEqual(['b1']);
    expect(rows).toHaveLength(3);
    expect(await other.listDnsChallengeValues([], at(5))).toEqual([]);
  });

  it('takes the same value again as one record with the new expiry', async () => {
    await store.putDnsChallenge(record('again', 'v', { expiresAt: at(10) }));
    await store.putDnsChallenge(record('again', 'v', { expiresAt: at(100) }));
    expect(await valuesAt(other, 'again', at(50))).toEqual(['v']);
  });

  it('answers a value until it expires, and not from then on', async () => {
    await store.putDnsChallenge(record('expiring', 'v', { expiresAt: at(60) }));
    expect(await valuesAt(other, 'expiring', at(59))).toEqual(['v']);
    expect(await valuesAt(other, 'expiring', at(60))).toEqual([]);
  });

  it('removes one value and leaves the others; removing what is not there is no error', async () => {
    await store.putDnsChallenge(record('removing', 'a'));
    await store.putDnsChallenge(record('removing', 'b'));
    await store.removeDnsChallenge('removing', 'a');
    await store.removeDnsChallenge('removing', 'never-there');
    expect(await valuesAt(other, 'removing', at(1))).toEqual(['b']);
  });

  it('stores a value for an existing claim, refuses one for a missing claim, and forgets the values of a deleted claim', async () => {
    const claim = await newClaim();
    expect(await store.putDnsChallenge(record('claimed', 'v', { domainId: claim.id }))).toBe(true);
    expect(await store.putDnsChallenge(record('claimed', 'w', { domainId: 'dom_missing00000' }))).toBe(false);
    expect(await valuesAt(other, 'claimed', at(1))).toEqual(['v']);
    expect(await store.deleteDomain(claim.id)).toBe(true);
    expect(await valuesAt(other, 'claimed', at(1))).toEqual([]);
    // A value refused inside a transaction leaves the transaction usable (PostgreSQL aborts a
    // transaction on any error, caught or not: the refusal is a condition, not an error).
    await store.transaction(async (tx) => {
      expect(await tx.putDnsChallenge(record('in-tx', 'x', { domainId: 'dom_missing00000' }))).toBe(false);
      expect(await tx.putDnsChallenge(record('in-tx', 'y'))).toBe(true);
    });
    expect(await valuesAt(other, 'in-tx', at(1))).toEqual(['y']);
  });

  it('is seen by another connection only once its transaction commits', async () => {
    let seenInside: string[] | undefined;
    await store.transaction(async (tx) => {
      await tx.putDnsChallenge(record('committed', 'v'));
      // On SQLite the two are one store, whose group commit runs this read inside the transaction.
      if (other !== store) seenInside = await valuesAt(other, 'committed', at(1));
    });
    if (other !== store) expect(seenInside).toEqual([]);
    expect(await valuesAt(other, 'committed', at(1))).toEqual(['v']);
  });

  it('deletes expired values in batches, and housekeeping does so for the worker', async () => {
    for (let i = 0; i < 5; i++) await store.putDnsChallenge(record('old', `v${i}`, { expiresAt: at(-10) }));
    await store.putDnsChallenge(record('old', 'fresh', { expiresAt: at(3600) }));
    expect(await store.deleteExpiredDnsChallenges(at(0), 3)).toBe(3);
    const pass = await new Housekeeping(
      store,
      { now: () => new Date(at(0)) },
      pino({ level: 'silent' }),
    ).runOnce();
    expect(pass.dnsChallenges).toBe(2);
    expect(await store.deleteExpiredDnsChallenges(at(0), 100)).toBe(0);
    expect(await valuesAt(other, 'old', at(0))).toEqual(['fresh']);
  });
});
