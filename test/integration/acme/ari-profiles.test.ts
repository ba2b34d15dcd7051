import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ariCertId } from '../../../src/acme/ari.js';
import { renewJobKey } from '../../../src/acme/certificates.js';
import { ConfigError } from '../../../src/config-error.js';
import type { Store } from '../../../src/store/store.js';
import { type AcmeFront, startAcmeFront } from '../../helpers/acme-front.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Http01Responder, startHttp01Responder } from '../../helpers/http01-responder.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';

/**
 * ACME Renewal Information (RFC 9773) and profiles, against a real Pebble behind a FAKE front
 * (test/helpers/acme-front.ts): Pebble 2.4 has neither, so the front adds `renewalInfo` and
 * `meta.profiles` to its directory and answers the renewal windows the test sets; orders,
 * validation and issuance are Pebble's own. The worker runs on the simulated clock.
 */
const DAY = 86_400;
const PROFILES = { tlsserver: 'TLS server, 45 days', shortlived: 'TLS server, 160 hours' };

describe.each(backends)('ARI and profiles through a fake front over Pebble, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let responder: Http01Responder;
  let pebble: Pebble;
  let front: AcmeFront;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    responder = await startHttp01Responder({ get: (token) => store.findChallenge(token) });
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
    front = await startAcmeFront(pebble, { profiles: PROFILES }, { renewalInfo: true });
  });
  afterAll(async () => {
    await front?.close();
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
    await store?.close();
  });

  const env = () => ({
    PORTICO_TLS_ISSUER: 'acme',
    PORTICO_ACME_DIRECTORY: front.directoryUrl,
    PORTICO_ACME_CA_FILE: front.caFile,
    PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    PORTICO_ACME_PROFILE: 'shortlived',
    // Two orders an hour: the app's default hostname's and the domain's first. A renewal counted
    // against it would have to wait.
    PORTICO_ISSUANCE_RATE_PER_HOUR: '2',
  });

  it('polls the window after Retry-After, renews at once when it moves into the past, with replaces and the profile, outside the hourly budget', async () => {
    const rig = await openCertificateRig(store, dns, env());
    const hostname = `ari-${backend.name}.test`;
    const t0 = rig.clock.now().getTime();
    // Every certificate's window, until the test moves this one's: a month away, polled every 10 min.
    const later = { start: new Date(t0 + 30 * DAY * 1000), end: new Date(t0 + 32 * DAY * 1000) };
    front.setRenewalWindow('*', { ...later, retryAfterSeconds: 600 });
    // The rig's app queued an order for its default hostname (which no DNS answers, so it fails):
    // run it first, so that it spends its order before the domain's, whatever order the store
    // returns due jobs in.
    await rig.drain();
    const placedBefore = await store.countCertificateOrders(new Date(0).toISOString(), 'placed');
    expect(placedBefore).toBe(1);
    const orders = () => front.orderPayloads.slice(placedBefore);

    await rig.addVerified(hostname);
    await rig.drain();
    const first = await store.findCertificate(hostname);
    if (!first?.certificatePem || !first.notAfter)
      throw new Error(`no certificate issued: ${first?.lastError}`);
    const certId = ariCertId(first.certificatePem);
    expect(orders()).toHaveLength(1);
    expect(orders()[0]).toMatchObject({ profile: 'shortlived' });
    expect(orders()[0]).not.toHaveProperty('replaces');
    expect(first.caDirectory).toBe(front.directoryUrl);

    // The first renewal check asked for the window right after issuance, and picked a moment in it.
    expect(front.renewalInfoRequests).toEqual([certId]);
    const checked = await store.findCertificate(hostname);
    expect(checked).toMatchObject({
      ariWindowStart: later.start.toISOString(),
      ariWindowEnd: later.end.toISOString(),
      ariNextPollAt: new Date(t0 + 600_000).toISOString(),
    });
    const renewAt = Date.parse(checked?.renewAt ?? '');
    expect(renewAt).toBeGreaterThanOrEqual(later.start.getTime());
    expect(renewAt).toBeLessThanOrEqual(later.end.getTime());
    // The job comes back at the next poll, which is sooner than the moment picked.
    expect(await store.findJob(renewJobKey(hostname))).toMatchObject({ runAt: checked?.ariNextPollAt });

    // Before Retry-After has passed nothing is asked; after it the window is asked again, and the
    // moment picked stays while the window still holds it.
    rig.clock.advance(300);
    await rig.drain();
    expect(front.renewalInfoRequests).toHaveLength(1);
    rig.clock.advance(301);
    await rig.drain();
    expect(front.renewalInfoRequests).toHaveLength(2);
    expect((await store.findCertificate(hostname))?.renewAt).toBe(checked?.renewAt);

    // The CA moves the window into the past (a revocation, an incident): acted on at the next poll,
    // within the hour of the first order, which a counted order could not be.
    const now = rig.clock.now().getTime();
    front.setRenewalWindow(certId, {
      start: new Date(now - 2 * DAY * 1000),
      end: new Date(now - DAY * 1000),
      retryAfterSeconds: 600,
    });
    rig.clock.advance(601);
    await rig.drain();
    const second = await store.findCertificate(hostname);
    expect(second?.certificatePem).not.toBe(first.certificatePem);
    expect(second?.lastError).toBeNull();
    expect(orders()).toHaveLength(2);
    expect(orders()[1]).toMatchObject({ profile: 'shortlived', replaces: certId });
    expect(rig.events).toContainEqual({ hostname, event: 'certificate.renewed' });
    // Only the domain's first order was counted against PORTICO_ISSUANCE_RATE_PER_HOUR.
    expect(await store.countCertificateOrders(new Date(0).toISOString(), 'placed', hostname)).toBe(1);
    expect(await store.countCertificateOrders(new Date(0).toISOString(), 'placed')).toBe(2);
    // The new certificate's window is asked for in its turn.
    expect(front.renewalInfoRequests.at(-1)).toBe(ariCertId(second?.certificatePem ?? ''));
    await rig.api.close();
  });

  it('a CA whose renewal information fails keeps the lifetime rule, and is asked again in an hour, not every minute', async () => {
    // The first test spent the hourly orders of env(): this one has room for its own.
    const rig = await openCertificateRig(store, dns, { ...env(), PORTICO_ISSUANCE_RATE_PER_HOUR: '100' });
    const hostname = `ari-down-${backend.name}.test`;
    const t0 = rig.clock.now().getTime();
    front.refuseRenewalInfo(503);
    try {
      await rig.addVerified(hostname);
      await rig.drain();
      const issued = await store.findCertificate(hostname);
      if (!issued?.certificatePem || !issued.notBefore || !issued.notAfter) throw new Error('no certificate');
      const certId = ariCertId(issued.certificatePem);
      expect(front.renewalInfoRequests.filter((id) => id === certId)).toHaveLength(1);
      // The lifetime rule's moment stands; the next poll is an hour away, and the job comes back then.
      const lifetime = Date.parse(issued.notAfter) - Date.parse(issued.notBefore);
      const left = (Date.parse(issued.notAfter) - Date.parse(issued.renewAt ?? '')) / lifetime;
      expect(left).toBeGreaterThanOrEqual(0.33 - 1e-6);
      expect(left).toBeLessThanOrEqual(0.43 + 1e-6);
      expect(issued).toMatchObject({
        ariWindowStart: null,
        ariNextPollAt: new Date(t0 + 3600_000).toISOString(),
      });
      expect(await store.findJob(renewJobKey(hostname))).toMatchObject({ runAt: issued.ariNextPollAt });
      rig.clock.advance(30 * 60);
      await rig.drain();
      expect(front.renewalInfoRequests.filter((id) => id === certId)).toHaveLength(1);
      front.refuseRenewalInfo(undefined);
      front.setRenewalWindow(certId, {
        start: new Date(t0 + 20 * DAY * 1000),
        end: new Date(t0 + 21 * DAY * 1000),
        retryAfterSeconds: 3600,
      });
      rig.clock.advance(30 * 60 + 1);
      await rig.drain();
      expect(front.renewalInfoRequests.filter((id) => id === certId)).toHaveLength(2);
      expect(await store.findCertificate(hostname)).toMatchObject({
        ariWindowStart: new Date(t0 + 20 * DAY * 1000).toISOString(),
      });
    } finally {
      front.refuseRenewalInfo(undefined);
    }
    await rig.api.close();
  });

  it('refuses at start a profile the CA does not offer, naming the ones it does', async () => {
    const opened = openCertificateRig(store, dns, { ...env(), PORTICO_ACME_PROFILE: 'longlived' });
    await expect(opened).rejects.toThrow(ConfigError);
    await expect(opened).rejects.toThrow(
      `PORTICO_ACME_PROFILE is "longlived", but the CA at ${front.directoryUrl} offers "tlsserver", "shortlived"`,
    );
  });
});
