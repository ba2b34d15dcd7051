/**
 * Fills a Portico SQLite store for the edge benchmark through the Store interface, as the API and
 * the worker would have left it: apps with an `origin_url`, `active` domains, and `issued`
 * certificates with sealed keys. Rows go in through `store.transaction` in batches, so 100,000
 * domains take seconds, not minutes. The hostname policy runs only at the API, so names such as
 * `localhost` can be stored for the benchmark's sake.
 */

import { createApiKey } from '../../src/domain/api-keys.js';
import { systemClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/store.js';
import { activeDomainRecord, issuedCertificateRecord } from '../../test/helpers/seeded-records.js';
import type { IssuedCertificateRow } from './certificates.js';

export interface SeedOptions {
  dataDir: string;
  originUrl: string;
  /** Customer domains, `active`, spread over apps `perApp` at a time, none primary (each serves itself). */
  domains: readonly string[];
  perApp: number;
  /** Names served on an app of their own as its primary domain (the throughput target). */
  primaries?: readonly string[];
  /** Certificates to store (`issued`), for any of the names above. */
  certificates?: readonly IssuedCertificateRow[];
}

const BATCH = 5_000;

async function inBatches<T>(store: Store, items: readonly T[], write: (tx: Store, item: T) => Promise<void>) {
  for (let start = 0; start < items.length; start += BATCH) {
    const slice = items.slice(start, start + BATCH);
    await store.transaction(async (tx) => {
      for (const item of slice) await write(tx, item);
    });
  }
}

interface DomainRow {
  name: string;
  appId: string;
  isPrimary: boolean;
}

/** Creates the store in `dataDir` (migrated), fills it, and closes it. */
export async function seedStore(options: SeedOptions): Promise<void> {
  const store = await createStore({ dataDir: options.dataDir });
  try {
    const now = systemClock.now().toISOString();
    // An API key exists in any deployed store; without one `serve` would make one at start.
    const { orgId } = await createApiKey(store, systemClock, { orgName: 'edge-bench', scope: 'write' });
    const apps: string[] = [];
    const rows: DomainRow[] = [];
    for (const name of options.primaries ?? []) {
      const appId = newId('app');
      apps.push(appId);
      rows.push({ name, appId, isPrimary: true });
    }
    let appId = '';
    options.domains.forEach((name, i) => {
      if (i % options.perApp === 0) {
        appId = newId('app');
        apps.push(appId);
      }
      rows.push({ name, appId, isPrimary: false });
    });

    await inBatches(store, apps, (tx, id) =>
      tx.insertApp({
        id,
        orgId,
        slug: id.replace('_', '-'),
        title: id,
        description: null,
        originUrl: options.originUrl,
        createdAt: now,
        updatedAt: now,
      }),
    );
    const domainIds = new Map<string, { id: string; appId: string }>();
    let serial = 0;
    await inBatches(store, rows, (tx, row) => {
      const id = `dom_bench${(serial++).toString(36).padStart(7, '0')}`;
      domainIds.set(row.name, { id, appId: row.appId });
      return tx.insertDomain(
        activeDomainRecord({
          id,
          appId: row.appId,
          orgId,
          name: row.name,
          isPrimary: row.isPrimary,
          // Never checked against DNS here: any unique string does.
          verificationToken: `benchtoken${id}`,
          now,
        }),
      );
    });
    await inBatches(store, options.certificates ?? [], (tx, certificate) => {
      const owner = domainIds.get(certificate.hostname);
      if (!owner) throw new Error(`no domain for the certificate of ${certificate.hostname}`);
      return tx.putCertificate(
        issuedCertificateRecord({
          hostname: certificate.hostname,
          domainId: owner.id,
          appId: owner.appId,
          issuer: 'internal',
          certificatePem: certificate.certificatePem,
          privateKeyEnc: certificate.privateKeyEnc,
          notBefore: certificate.notBefore,
          notAfter: certificate.notAfter,
          now,
        }),
      );
    });
  } finally {
    // Closing the last connection checkpoints the WAL into the database file, as after a long uptime.
    await store.close();
  }
}
