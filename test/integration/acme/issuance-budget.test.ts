import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { issueJobKey } from '../../../src/acme/certificates.js';
import type { Store } from '../../../src/store/store.js';
import { createTestApp } from '../../helpers/api.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * The hourly issuance limit is shared by every organization, so each has a budget of its own
 * (PORTICO_ISSUANCE_RATE_PER_ORG_PER_HOUR, by default a quarter of PORTICO_ISSUANCE_RATE_PER_HOUR),
 * and apps' default hostnames spend the platform's budget, not a tenant's: one organization's
 * burst makes only itself wait. Real orders, on both stores: the local CA, and Pebble for ACME.
 */
describe.each(backends)('issuance budgets on $name', (backend) => {
  // Each test counts orders from zero: a store of its own.
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let pebble: Pebble;

  beforeAll(async () => {
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
  });
  beforeEach(async () => {
    store = await backend.open();
  });
  afterEach(async () => {
    await store?.close();
  });
  afterAll(async () => {
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
  });

  it('lets another organization’s order through while one organization has spent its own budget', async () => {
    // 8 orders an hour across the platform; each organization's share is then 2 (a quarter, rounded up).
    const rig = await openCertificateRig(store, dns, { PORTICO_ISSUANCE_RATE_PER_HOUR: '8' });
    try {
      expect(rig.config.issuanceRatePerOrgPerHour).toBe(2);
      const burst = Array.from({ length: 8 }, (_, i) => `burst${i}.budget-${backend.name}.com`);
      for (const name of burst) await rig.addVerified(name);
      const other = { key: await rig.api.keyFor('patient-org'), appId: '' };
      other.appId = await createTestApp(rig.api, other.key);
      const theirs = `shop.patient-${backend.name}.com`;
      await rig.addVerified(theirs, '127.0.0.1', other);
      await rig.drain();

      expect((await rig.read(theirs, other)).status).toBe('active');
      const domains = await Promise.all(burst.map((name) => rig.read(name)));
      expect(domains.filter((domain) => domain.status === 'active')).toHaveLength(2);
      // The others say why they wait, in the API and on their jobs.
      const reason = 'waiting: 2 orders for this organization in the last hour reach its limit of 2';
      const waiting = domains.filter((domain) => domain.status === 'verified');
      expect(waiting).toHaveLength(6);
      for (const domain of waiting) {
        expect(domain.certificate).toMatchObject({ status: 'pending', last_error: reason });
        expect((await store.findJob(issueJobKey(domain.domain)))?.lastError).toBe(reason);
      }
      // An hour on, the budget is back: the rest follow, two at a time.
      rig.clock.advance(3601);
      await rig.drain();
      const later = await Promise.all(burst.map(async (name) => (await rig.read(name)).status));
      expect(later.filter((status) => status === 'active')).toHaveLength(4);
    } finally {
      await rig.api.close();
    }
  });

  it('with ACME (no wildcards), apps’ default hostnames spend the platform’s budget, not the tenants’', async () => {
    // 4 orders an hour, so a budget of 1: without budgets, four new apps would take all four.
    const rig = await openCertificateRig(store, dns, {
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
      PORTICO_ACME_CA_FILE: pebble.caFile,
      PORTICO_ISSUANCE_RATE_PER_HOUR: '4',
    });
    try {
      expect(rig.services.issuer?.wildcards).toBe(false);
      const hostnames = [
        (await rig.api.call(rig.key, 'GET', `/v1/apps/${rig.appId}`)).json().default_hostname,
      ];
      for (let i = 0; i < 3; i++) {
        const created = await rig.api.call(rig.key, 'POST', '/v1/apps', {
          slug: `acme-app-${backend.name}-${i}`,
          meta: { title: 'x' },
        });
        hostnames.push(created.json().default_hostname);
      }
      for (const hostname of hostnames) dns.set(hostname, 'A', '127.0.0.1');
      // The same tenant's own domain, verified after its four apps asked for certificates.
      const domain = `www.acme-budget-${backend.name}.com`;
      await rig.addVerified(domain);
      await rig.drain();

      expect(await rig.read(domain)).toMatchObject({
        status: 'active',
        certificate: { issuer: pebble.directoryUrl },
      });
      const served = await Promise.all(hostnames.map((h) => rig.reader.certificate(h)));
      expect(served.filter(Boolean)).toHaveLength(1);
      const jobs = await Promise.all(hostnames.map((hostname) => store.findJob(issueJobKey(hostname))));
      expect(jobs.filter((job) => job?.lastError?.includes("platform's own names"))).toHaveLength(3);
    } finally {
      await rig.api.close();
    }
  });
});
