import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCaa } from '../../../src/acme/caa.js';
import { issueJobKey } from '../../../src/acme/certificates.js';
import { CertIssueError } from '../../../src/acme/issuer.js';
import { WireResolver } from '../../../src/dns/wire-resolver.js';
import type { Store } from '../../../src/store/store.js';
import { type AcmeFront, startAcmeFront } from '../../helpers/acme-front.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * CAA before ordering, against a real Pebble and CAA records on the loopback DNS server. Pebble 2.4's
 * directory lists no `caaIdentities` (and Pebble checks no CAA itself), so the CA is reached through
 * a fake directory in front of it (test/helpers/acme-front.ts) that adds
 * `meta.caaIdentities: ["pebble.test"]` and passes everything else to Pebble, recording the orders
 * that reach it.
 */
const IDENTITY = 'pebble.test';

describe.each(backends)('CAA before ordering, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let pebble: Pebble;
  let front: AcmeFront;
  let counter = 0;
  const zone = `caa-${backend.name}.test`;
  const name = () => `shop${++counter}.${zone}`;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
    front = await startAcmeFront(pebble, { caaIdentities: [IDENTITY] });
  });
  afterAll(async () => {
    await front?.close();
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
    await store?.close();
  });

  const open = (directoryUrl = front.directoryUrl, caFile = front.caFile) =>
    openCertificateRig(store, dns, {
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: directoryUrl,
      PORTICO_ACME_CA_FILE: caFile,
    });
  const placedFor = (hostname: string) =>
    store.countCertificateOrders(new Date(0).toISOString(), 'placed', hostname);

  it('orders when the name’s own record allows the CA', async () => {
    const rig = await open();
    const hostname = name();
    dns.set(hostname, 'CAA', [`0 issue "${IDENTITY}"`, '0 iodef "mailto:security@example.test"']);
    await rig.addVerified(hostname);
    await rig.drain();
    expect(await rig.read(hostname)).toMatchObject({
      status: 'active',
      certificate: { status: 'issued', last_error: null, last_error_code: null },
    });
    expect(front.ordersFor(hostname)).toBe(1);
    await rig.api.close();
  });

  it('a parent’s record that forbids the CA: no order reaches the CA, the customer reads which record and where, and the fix is picked up on the backoff', async () => {
    const rig = await open();
    const parent = `forbidding.${zone}`;
    const hostname = `shop.${parent}`;
    dns.set(parent, 'CAA', '0 issue "digicert.com"');
    await rig.addVerified(hostname);
    await rig.drain();

    const domain = await rig.read(hostname);
    expect(domain.status).toBe('verified');
    expect(domain.certificate).toMatchObject({ status: 'failed', last_error_code: 'caa_forbidden' });
    expect(domain.certificate.last_error).toContain(
      `CAA 0 issue "digicert.com" at ${parent} forbids ${IDENTITY}`,
    );
    expect(domain.certificate.last_error).toContain(`${parent}. CAA 0 issue "${IDENTITY}"`);
    expect(front.ordersFor(hostname)).toBe(0);
    expect(await placedFor(hostname)).toBe(0);
    expect(rig.events).toContainEqual({ hostname, event: 'certificate.failed' });
    // A customer's problem: tried again in an hour, not in a minute.
    const job = await store.findJob(issueJobKey(hostname));
    expect(Date.parse(job?.runAt ?? '') - rig.clock.now().getTime()).toBe(3600_000);

    // The customer adds a record allowing the CA beside the other one.
    dns.add(parent, 'CAA', `0 issue "${IDENTITY}"`);
    rig.clock.advance(3600);
    await rig.drain();
    expect(await rig.read(hostname)).toMatchObject({
      status: 'active',
      certificate: { status: 'issued', last_error: null, last_error_code: null },
    });
    expect(front.ordersFor(hostname)).toBe(1);
    await rig.api.close();
  });

  it('a record inherited from the parent that allows the CA lets the order through', async () => {
    const rig = await open();
    const parent = `allowing.${zone}`;
    const hostname = `shop.${parent}`;
    dns.set(
      parent,
      'CAA',
      `0 issue "${IDENTITY.toUpperCase()}; accounturi=${'https://elsewhere.test/acct/1'}"`,
    );
    dns.add(parent, 'CAA', `0 issue "${IDENTITY}"`);
    await rig.addVerified(hostname);
    await rig.drain();
    expect((await rig.read(hostname)).status).toBe('active');
    await rig.api.close();
  });

  it('follows the name’s CNAME: the records of the platform’s CNAME target decide for every name routed to it', async () => {
    const rig = await open();
    const hostname = name();
    const target = rig.config.cnameTarget;
    // The name has none, the alias target does; the name's own parent is not asked before it.
    dns.set(target, 'CAA', '0 issue "sectigo.com"');
    dns.set(zone, 'CAA', `0 issue "${IDENTITY}"`);
    try {
      await rig.addVerified(hostname);
      await rig.drain();
      const domain = await rig.read(hostname);
      expect(domain.certificate.last_error_code).toBe('caa_forbidden');
      expect(domain.certificate.last_error).toContain(
        `CAA 0 issue "sectigo.com" at ${hostname} (through its CNAME to ${target}) forbids ${IDENTITY}`,
      );
      dns.set(target, 'CAA', `0 issue "${IDENTITY}"`);
      rig.clock.advance(3600);
      await rig.drain();
      expect((await rig.read(hostname)).status).toBe('active');
    } finally {
      dns.remove(target, 'CAA');
      dns.remove(zone, 'CAA');
    }
    await rig.api.close();
  });

  it('issuewild is for wildcards only: a name its issue record allows is ordered', async () => {
    const rig = await open();
    const hostname = name();
    dns.set(hostname, 'CAA', ['0 issuewild ";"', `0 issue "${IDENTITY}"`]);
    await rig.addVerified(hostname);
    await rig.drain();
    expect((await rig.read(hostname)).status).toBe('active');
    await rig.api.close();
  });

  it('a DNS failure is no permission: nothing is ordered, the check is retried within minutes, and passes once DNS answers', async () => {
    const rig = await open();
    const hostname = name();
    dns.set(hostname, 'CAA', `0 issue "${IDENTITY}"`);
    dns.fault(hostname, 'servfail', 'CAA');
    try {
      await rig.addVerified(hostname);
      await rig.drain();
      const domain = await rig.read(hostname);
      expect(domain.certificate).toMatchObject({ status: 'failed', last_error_code: 'caa_lookup_failed' });
      expect(domain.certificate.last_error).toContain(`SERVFAIL for ${hostname}`);
      expect(front.ordersFor(hostname)).toBe(0);
      const job = await store.findJob(issueJobKey(hostname));
      expect(Date.parse(job?.runAt ?? '') - rig.clock.now().getTime()).toBe(60_000);
    } finally {
      dns.fault(hostname, null, 'CAA');
    }
    rig.clock.advance(60);
    await rig.drain();
    expect((await rig.read(hostname)).status).toBe('active');
    expect(front.ordersFor(hostname)).toBe(1);
    await rig.api.close();
  });

  it('with a directory that names no caaIdentities (Pebble’s own), refuses only records that forbid every CA', async () => {
    const rig = await open(pebble.directoryUrl, pebble.caFile);
    const allowed = name();
    const nobody = name();
    // Whether "digicert.com" is this CA cannot be told: left to the CA, which checks CAA itself.
    dns.set(allowed, 'CAA', '0 issue "digicert.com"');
    dns.set(nobody, 'CAA', '0 issue ";"');
    await rig.addVerified(allowed);
    await rig.addVerified(nobody);
    await rig.drain();
    expect((await rig.read(allowed)).status).toBe('active');
    const refused = await rig.read(nobody);
    expect(refused.certificate.last_error_code).toBe('caa_forbidden');
    expect(refused.certificate.last_error).toContain(`CAA 0 issue ";" at ${nobody} forbids every CA`);
    await rig.api.close();
  });
});

describe('checkCaa (the loopback DNS server)', () => {
  let dns: TestDnsServer;
  let resolver: WireResolver;
  beforeAll(async () => {
    dns = await startDnsServer();
    resolver = new WireResolver({ servers: [dns.address], timeoutMs: 2000 });
  });
  afterAll(async () => {
    await dns?.close();
  });
  const refusal = async (names: string[]) => {
    try {
      await checkCaa(resolver, names, { identities: ['letsencrypt.org'] });
      return undefined;
    } catch (error) {
      if (!(error instanceof CertIssueError)) throw error;
      return error;
    }
  };

  it('judges a wildcard by issuewild, falling back to issue', async () => {
    dns.set('acme.test', 'CAA', ['0 issue "letsencrypt.org"', '0 issuewild "digicert.com"']);
    expect(await refusal(['shop.acme.test'])).toBeUndefined();
    const wild = await refusal(['shop.acme.test', '*.acme.test']);
    expect(wild?.code).toBe('caa_forbidden');
    expect(wild?.hostname).toBe('*.acme.test');
    expect(wild?.message).toContain(
      'CAA 0 issuewild "digicert.com" at acme.test forbids letsencrypt.org for *.acme.test',
    );
    dns.set('acme.test', 'CAA', '0 issue "letsencrypt.org"');
    expect(await refusal(['*.acme.test'])).toBeUndefined();
  });

  it('refuses for every CA on a critical record with a tag no CA knows', async () => {
    dns.set('crit.test', 'CAA', ['0 issue "letsencrypt.org"', '128 tbs "unknown"']);
    const error = await refusal(['shop.crit.test']);
    expect(error?.code).toBe('caa_forbidden');
    expect(error?.message).toContain('CAA 128 tbs "unknown" at crit.test forbids every CA');
  });
});
