import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createApiKey } from '../../../src/domain/api-keys.js';
import { AppService } from '../../../src/domain/apps.js';
import { DomainService } from '../../../src/domain/domains.js';
import { createServices } from '../../../src/services.js';
import type { Store } from '../../../src/store/store.js';
import { Worker } from '../../../src/worker/runner.js';
import { ManualClock } from '../../helpers/clock.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';
import { startWebhookReceiver } from '../../helpers/webhook-receiver.js';

/**
 * Organization A has 100 webhook deliveries queued to a receiver that never answers (each holds a
 * worker slot until its 10 s timeout); organization B then asks to verify a domain whose records are
 * in place. B's check must not wait behind A's backlog: it runs while every one of A's deliveries
 * is still waiting for its receiver. The worker runs with the shipped settings.
 */
describe.each(backends)('a worker shared by organizations on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    receiver = await startWebhookReceiver({ answer: false });
  });
  afterAll(async () => {
    await receiver.close();
    await dns.close();
    await store.close();
  });

  it('runs one organization’s check while another’s slow webhooks fill the queue', async () => {
    const clock = new ManualClock();
    const config = loadConfig({
      PORTICO_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'portico-fair-')),
      PORTICO_APPS_DOMAIN: 'apps.portico.test',
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      PORTICO_TLS_ISSUER: 'none',
      PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
    });
    const services = await createServices({
      config,
      store,
      clock,
      logger: pino({ level: 'silent' }),
      issuer: null,
    });
    const apps = new AppService(store, config, clock);
    const domains = new DomainService(store, config, clock);
    const tenant = async (name: string) => {
      const { orgId } = await createApiKey(store, clock, {
        orgName: `${name}-${backend.name}`,
        scope: 'write',
      });
      const app = await apps.create(orgId, { slug: `${name}-${backend.name}`, title: name });
      const domain = await domains.add(orgId, app.id, {
        domain: `${name}.fair-${backend.name}.com`,
        isPrimary: false,
      });
      return { orgId, app, domain };
    };

    const a = await tenant('busy');
    await services.webhooks.create(a.orgId, { url: receiver.url });
    for (let i = 0; i < 100; i++) {
      await store.transaction((tx) => services.webhooks.record(tx, 'domain.verified', a.domain, clock.now()));
    }
    const worker = new Worker({
      store,
      handlers: services.handlers,
      clock,
      logger: pino({ level: 'silent' }),
      concurrency: config.workerConcurrency,
      orgConcurrency: config.workerOrgConcurrency,
      leaseSeconds: config.jobLeaseSeconds,
      pollIntervalMs: 50,
    });
    worker.start();
    try {
      // A's deliveries take the slots A may have: 24 of the 32 by default.
      await waitUntil(() => receiver.received() >= config.workerOrgConcurrency);

      clock.advance(1);
      const b = await tenant('quiet');
      dns.add(
        `_mixpeek-verify.${b.domain.name}`,
        'TXT',
        `mixpeek-site-verification=${b.domain.verificationToken}`,
      );
      dns.set(b.domain.name, 'CNAME', config.cnameTarget);
      await domains.requestVerification(b.orgId, b.app.id, b.domain.name);
      await waitUntil(async () => (await store.findDomainById(b.domain.id))?.status === 'verified');

      // None of A's deliveries has ended (each would have waited 10 s for its receiver): B did not
      // wait for a slot that one of them freed.
      const { rows } = await store.listDeliveries(
        (await store.listWebhooks(a.orgId, { limit: 1, offset: 0 })).rows[0]?.id ?? '',
        { limit: 100, offset: 0 },
      );
      expect(rows).toHaveLength(100);
      expect(rows.filter((delivery) => delivery.attempts > 0)).toEqual([]);
      // And A never held more than its share of the worker.
      expect(receiver.received()).toBe(config.workerOrgConcurrency);
    } finally {
      await worker.stop(0);
    }
  });
});
