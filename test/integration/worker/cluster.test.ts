import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../../src/domain/api-keys.js';
import { AppService } from '../../../src/domain/apps.js';
import { systemClock } from '../../../src/domain/clock.js';
import { DomainService } from '../../../src/domain/domains.js';
import { createStore, type Store } from '../../../src/store/index.js';
import { createScratchDatabase } from '../../helpers/databases.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type RunningProcess, startPortico } from '../../helpers/process.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const DOMAINS = 300;
const WORKERS = 3;
const databaseUrl = process.env.DATABASE_URL;
const hasPostgres = backends.some((backend) => backend.name === 'postgres');

/**
 * Three `portico serve --roles worker` processes on one PostgreSQL database, 300 domains waiting
 * in `verifying`, their records already in DNS. Every domain must be verified, each by exactly one
 * check: the DNS server sees exactly one ownership query and one routing query per domain, so no
 * two workers ever checked the same domain.
 */
describe.skipIf(!hasPostgres)('worker processes on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let store: Store;
  let dns: TestDnsServer;
  const workers: RunningProcess[] = [];
  const names: string[] = [];

  beforeAll(async () => {
    database = await createScratchDatabase(databaseUrl as string);
    store = await createStore({ databaseUrl: database.url, dataDir: '/tmp' });
    dns = await startDnsServer();
    const { orgId } = await createApiKey(store, systemClock, { orgName: 'cluster', scope: 'write' });
    const app = await new AppService(store, { allowPrivateOrigins: false }, systemClock).create(orgId, {
      slug: 'cluster-app',
      title: 'Cluster',
    });
    const domains = new DomainService(store, { appsDomain: 'apps.portico.test' }, systemClock);
    for (let i = 0; i < DOMAINS; i++) {
      const name = `site${i}.cluster-test.com`;
      const domain = await domains.add(orgId, app.id, { domain: name, isPrimary: false });
      dns.add(`_mixpeek-verify.${name}`, 'TXT', `mixpeek-site-verification=${domain.verificationToken}`);
      dns.set(name, 'CNAME', 'cname.apps.portico.test');
      names.push(name);
    }
    // Queued, not checked: no verification service here, so the workers do every check.
    for (const name of names) await domains.requestVerification(orgId, app.id, name);
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await store?.close();
    await dns?.close();
    await database?.drop();
  });

  it('verifies every domain exactly once', async () => {
    dns.resetQueries();
    for (let i = 0; i < WORKERS; i++) {
      workers.push(
        startPortico(['serve', '--roles', 'worker'], {
          DATABASE_URL: database.url,
          PORTICO_DNS_SERVERS: dns.address,
          PORTICO_APPS_DOMAIN: 'apps.portico.test',
          PORTICO_WORKER_CONCURRENCY: '8',
          // This test is about verification; certificates have suites of their own.
          PORTICO_TLS_ISSUER: 'none',
          // Every node shares the key that seals secrets (required with DATABASE_URL).
          PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 5).toString('base64'),
        }),
      );
    }
    await Promise.all(workers.map((worker) => worker.waitFor(/worker started/)));

    const verified = async () =>
      (await Promise.all(names.map((name) => store.findClaims(name))))
        .flat()
        .filter((d) => d.status === 'verified').length;
    await waitUntil(async () => (await verified()) === DOMAINS, 200);

    for (const name of names) {
      expect(dns.queriesFor(`_mixpeek-verify.${name}`, 'TXT'), name).toBe(1);
      expect(dns.queriesFor(name, 'CNAME'), name).toBe(1);
    }
    for (const worker of workers) expect(worker.child.exitCode, worker.output()).toBeNull();
    expect(await store.countJobs('domain:verify')).toBe(0);
    expect(await store.countJobs('domain:reverify')).toBe(DOMAINS);
  });
});
