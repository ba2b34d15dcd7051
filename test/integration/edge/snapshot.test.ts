import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateReader } from '../../../src/acme/certificate-reader.js';
import { loadConfig } from '../../../src/config.js';
import { defaultHostname, routeOf } from '../../../src/domain/serving.js';
import type { Edge } from '../../../src/edge/server.js';
import { startEdgeRole } from '../../../src/roles.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { snapshotFile } from '../../../src/snapshot/snapshot-file.js';
import { SnapshotReader } from '../../../src/snapshot/snapshot-reader.js';
import { SnapshotWriter } from '../../../src/snapshot/snapshot-writer.js';
import { ALL_HOSTNAMES, type Store } from '../../../src/store/store.js';
import { createTestCa, type TestCa } from '../../helpers/certs.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { type SeededNames, seedServedNames } from '../../helpers/served-names.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const APPS_DOMAIN = 'apps.snapshot.test';
/** A customer's wildcard claim, its base, and a name under it claimed exactly by another organization. */
const WILD_BASE = 'wild.snapshot-test.com';
const WILDCARD = `*.${WILD_BASE}`;
const EXACT_UNDER = `shop.${WILD_BASE}`;
/** A name one label under the wildcard, new each time: nothing can have cached it. */
const underWildcard = () => `${randomBytes(6).toString('hex')}.${WILD_BASE}`;

function visit(
  port: number,
  name: string,
  ca: string,
): Promise<{ status: number; san?: string } | { error: string }> {
  return new Promise((resolve) => {
    https
      .get(
        { host: '127.0.0.1', port, servername: name, headers: { host: name }, ca, agent: false },
        (res) => {
          const san = (res.socket as TLSSocket).getPeerCertificate().subjectaltname;
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, san }));
        },
      )
      .on('error', (error) => resolve({ error: error.message }));
  });
}

/**
 * The node's snapshot over a real store: what the writer puts in it is what the store's own rules
 * answer name by name (routes, primary redirects, the certificate chosen), announced changes reach
 * it, and an edge whose store stops answering serves every name from it, those it never cached too.
 * A wildcard claim is kept once, by its own name: the names under it are answered from it, with
 * its certificate, as the store answers them.
 */
describe.each(backends)('edge snapshot on $name', (backend) => {
  let store: Store;
  let edgeStore: Store;
  let dir: string;
  let origin: TestOrigin;
  let ca: TestCa;
  let seeded: SeededNames;
  let writer: SnapshotWriter;
  let reader: SnapshotReader;
  let edge: Edge;
  const box = SecretBox.fromText(randomBytes(32).toString('base64'));
  const names = Array.from({ length: 30 }, (_, i) => `shop${i}.snapshot-test.com`);
  const logger = pino({ level: 'silent' });
  let storeClosed = false;

  beforeAll(async () => {
    [store, edgeStore] = await backend.openPair();
    dir = mkdtempSync(path.join(tmpdir(), 'portico-snapshot-it-'));
    origin = await startOrigin();
    ca = await createTestCa();
    seeded = await seedServedNames(store, box, ca, { names, originUrl: origin.url });
    // One primary: the others redirect to it.
    await store.updateDomain(seeded.domainIds.get(names[0] as string) as string, {
      isPrimary: true,
      updatedAt: new Date().toISOString(),
    });
    writer = new SnapshotWriter({
      store,
      appsDomain: APPS_DOMAIN,
      certificates: new CertificateReader(store, box, APPS_DOMAIN),
      file: snapshotFile(dir),
      logger,
      debounceMs: 50,
    });
    writer.start();
    await writer.flush();
    reader = new SnapshotReader({ file: snapshotFile(dir), box, maxAgeMs: 3_600_000, logger });
    const config = loadConfig({
      PORTICO_DATA_DIR: dir,
      PORTICO_APPS_DOMAIN: APPS_DOMAIN,
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    });
    edge = await startEdgeRole(config, edgeStore, { box, metrics: undefined }, logger, reader);
  });
  afterAll(async () => {
    await edge?.close();
    await writer?.stop();
    if (!storeClosed) {
      if (edgeStore !== store) await edgeStore?.close();
      await store?.close();
    } else if (edgeStore !== store) await store?.close();
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The snapshot answers each of `all` as the store does: its route, and the certificate the edge
   * asks for with it (a wildcard's, by the wildcard's name, for a name the wildcard serves).
   */
  async function expectSameAnswers(all: readonly string[]): Promise<void> {
    const certificates = new CertificateReader(store, box, APPS_DOMAIN);
    for (const name of all) {
      const route = await routeOf(store, APPS_DOMAIN, name);
      expect(reader.route(name), name).toEqual(route);
      const certificateName = route?.wildcard ?? name;
      const stored = await certificates.certificate(certificateName);
      const snapped = reader.certificate(certificateName);
      expect(snapped?.certificatePem, name).toBe(stored?.certificatePem);
      expect(snapped?.privateKeyPem, name).toBe(stored?.privateKeyPem);
    }
  }

  it('holds what the store answers name by name: routes, redirects to the primary, certificates', async () => {
    await expectSameAnswers([
      ...names,
      defaultHostname(seeded.slug, APPS_DOMAIN),
      'unknown.snapshot-test.com',
    ]);
    expect(reader.route(names[1] as string)?.redirectTo).toBe(names[0]);
    reader.storeAnswered();
  });

  it('follows announced changes: a removed name leaves, an added one comes', async () => {
    const removed = names[2] as string;
    await store.transaction(async (tx) => {
      await tx.deleteCertificatesOfDomain(seeded.domainIds.get(removed) as string);
      await tx.deleteDomain(seeded.domainIds.get(removed) as string);
      await tx.publishServingChange(removed);
    });
    const added = 'late.snapshot-test.com';
    await seedServedNames(store, box, ca, { names: [added], originUrl: origin.url, org: 'late' });
    await waitUntil(() => reader.route(removed) === undefined && reader.route(added) !== undefined, 50);
    expect(reader.certificate(added)?.certificatePem).toContain('BEGIN CERTIFICATE');
    reader.storeAnswered();
  });

  it('answers the names under a wildcard claim from its entry, an exact claim under it winning, through changes and rebuilds', async () => {
    // The wildcard is its app's primary: the app's other name is not redirected to it (nor could be).
    const wild = await seedServedNames(store, box, ca, {
      names: [WILDCARD, `alias-${WILD_BASE}`],
      originUrl: origin.url,
      org: 'wild',
    });
    await store.transaction(async (tx) => {
      await tx.updateDomain(wild.domainIds.get(WILDCARD) as string, {
        isPrimary: true,
        updatedAt: new Date().toISOString(),
      });
      await tx.publishServingChange(WILDCARD);
    });
    const exact = await seedServedNames(store, box, ca, {
      names: [EXACT_UNDER],
      originUrl: origin.url,
      org: 'exact',
    });
    const asked = [
      underWildcard(),
      underWildcard(),
      EXACT_UNDER,
      `alias-${WILD_BASE}`,
      WILDCARD,
      WILD_BASE,
      `a.b.${WILD_BASE}`,
      `a.${EXACT_UNDER}`,
    ];
    // Announced changes (the incremental path): the wildcard's own name, then the exact claim's.
    await waitUntil(
      () =>
        reader.route(EXACT_UNDER)?.appId === exact.appId && reader.route(asked[0] as string) !== undefined,
      50,
    );
    await expectSameAnswers(asked);
    expect(reader.route(asked[0] as string)).toMatchObject({ appId: wild.appId, wildcard: WILDCARD });
    expect(reader.route(EXACT_UNDER)?.wildcard).toBeUndefined();

    // The wildcard's certificate renewed: announced by its name, the snapshot has the new one.
    const renewed = await ca.issue([WILDCARD]);
    const previous = await store.findCertificate(WILDCARD);
    await store.transaction(async (tx) => {
      await tx.putCertificate({
        ...(previous as NonNullable<typeof previous>),
        certificatePem: renewed.certificatePem,
        privateKeyEnc: box.seal(renewed.privateKeyPem),
        notAfter: renewed.notAfter.toISOString(),
      });
      await tx.publishServingChange(WILDCARD);
    });
    await waitUntil(() => reader.certificate(WILDCARD)?.certificatePem === renewed.certificatePem, 50);
    await expectSameAnswers(asked);

    // The exact claim leaves: its name is the wildcard's again.
    await store.transaction(async (tx) => {
      await tx.deleteCertificatesOfDomain(exact.domainIds.get(EXACT_UNDER) as string);
      await tx.deleteDomain(exact.domainIds.get(EXACT_UNDER) as string);
      await tx.publishServingChange(EXACT_UNDER);
    });
    await waitUntil(() => reader.route(EXACT_UNDER)?.appId === wild.appId, 50);
    await expectSameAnswers(asked);

    // A rebuild from the whole store holds the same.
    const rebuiltAfter = Date.now();
    writer.changed(ALL_HOSTNAMES);
    await writer.flush();
    // Asking loads the newest file (looked at again once a second).
    await waitUntil(
      () =>
        reader.route(EXACT_UNDER) !== undefined && (reader.state().takenAt?.getTime() ?? 0) >= rebuiltAfter,
      50,
    );
    await expectSameAnswers(asked);

    // The exact claim back (for the outage below).
    await seedServedNames(store, box, ca, { names: [EXACT_UNDER], originUrl: origin.url, org: 'exact' });
    await waitUntil(() => reader.route(EXACT_UNDER)?.wildcard === undefined, 50);
    reader.storeAnswered();
  });

  it('serves every name from the snapshot once its store stops answering, cached or not', async () => {
    const port = edge.httpsPort;
    // Served from the store first, for a few names only (each redirects to the primary, 308).
    for (const name of names.slice(3, 6)) {
      expect(await visit(port, name, ca.certificatePem)).toMatchObject({ status: 308, san: `DNS:${name}` });
    }
    expect(await visit(port, names[0] as string, ca.certificatePem)).toMatchObject({ status: 200 });
    expect(reader.state().servingSince).toBeUndefined();
    await edgeStore.close();
    storeClosed = true;
    for (const name of names.slice(3, 20)) {
      const result = await visit(port, name, ca.certificatePem);
      // Names other than the primary redirect to it (308), with their own certificate.
      expect(result, name).toMatchObject({ status: 308, san: `DNS:${name}` });
    }
    expect(await visit(port, names[2] as string, ca.certificatePem)).toHaveProperty('error');
    // A name under the wildcard, never seen: its App, with the wildcard's certificate; the exact
    // claim under it keeps its own; two labels under it, nothing.
    for (const name of [underWildcard(), underWildcard()]) {
      expect(await visit(port, name, ca.certificatePem), name).toMatchObject({
        status: 200,
        san: `DNS:${WILDCARD}`,
      });
    }
    expect(await visit(port, EXACT_UNDER, ca.certificatePem)).toMatchObject({
      status: 200,
      san: `DNS:${EXACT_UNDER}`,
    });
    expect(await visit(port, `a.b.${WILD_BASE}`, ca.certificatePem)).toHaveProperty('error');
    expect(await visit(port, WILD_BASE, ca.certificatePem)).toHaveProperty('error');
    expect(reader.state().servingSince).toBeInstanceOf(Date);
  });
});
