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
import type { Store } from '../../../src/store/store.js';
import { createTestCa, type TestCa } from '../../helpers/certs.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { type SeededNames, seedServedNames } from '../../helpers/served-names.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const APPS_DOMAIN = 'apps.snapshot.test';

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

  it('holds what the store answers name by name: routes, redirects to the primary, certificates', async () => {
    const certificates = new CertificateReader(store, box, APPS_DOMAIN);
    const all = [...names, defaultHostname(seeded.slug, APPS_DOMAIN), 'unknown.snapshot-test.com'];
    for (const name of all) {
      expect(reader.route(name), name).toEqual(await routeOf(store, APPS_DOMAIN, name));
      const stored = await certificates.certificate(name);
      const snapped = reader.certificate(name);
      expect(snapped?.certificatePem, name).toBe(stored?.certificatePem);
      expect(snapped?.privateKeyPem, name).toBe(stored?.privateKeyPem);
    }
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
    expect(reader.state().servingSince).toBeInstanceOf(Date);
  });
});
