import { once } from 'node:events';
import net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueJobKey, renewJobKey } from '../../../src/acme/certificates.js';
import { printDomain } from '../../../src/cli/domain-view.js';
import { Output } from '../../../src/cli/output.js';
import { type Edge, startEdge } from '../../../src/edge/server.js';
import type { CertificateSource, RouteSource } from '../../../src/edge/sources.js';
import { leafSha256 } from '../../../src/probes/edge-probe.js';
import { PROBE_JOB, probeJobKey, ServingProbes } from '../../../src/probes/serving-probes.js';
import { edgeOptions } from '../../../src/roles.js';
import type { CertificateRecord, Store } from '../../../src/store/store.js';
import { domainProbeHandlers } from '../../../src/worker/jobs/domain-probe.js';
import { Worker } from '../../../src/worker/runner.js';
import { createTestApp } from '../../helpers/api.js';
import { freePort } from '../../helpers/pebble.js';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { backends } from '../../helpers/stores.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../helpers/webhook-receiver.js';

/**
 * Serving probes end to end: a domain issued and served as `serve` does it, two real edges (the
 * edge server with the store-backed sources `serve` gives it) on the probe addresses, the worker
 * probing on the simulated clock the worker tests use, and a real webhook receiver. One edge keeps
 * serving the certificate it cached before a renewal (it missed the change signal, as an edge whose
 * LISTEN connection is down does); the other refuses the name. Both show in the domain's `serving`
 * within one probe interval, with `domain.degraded`; both recover with `domain.recovered`. Through it
 * all the domain stays `active` and no certificate is ordered.
 */

const INTERVAL = 60;

/**
 * The fault injected into edge B: its sources answer "not served" for the names in `refused`, as
 * an edge whose store lost the name would (the DNS server's faults play the same part for DNS).
 */
function refusing<T extends RouteSource | CertificateSource>(source: T, refused: Set<string>): T {
  return new Proxy(source, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (hostname: string, ...rest: unknown[]) =>
        refused.has(hostname) ? Promise.resolve(undefined) : value.call(target, hostname, ...rest);
    },
  });
}

describe.each(backends)('serving probes on $name', (backend) => {
  let served: ServedEdge;
  let receiver: WebhookReceiver;
  let edgeA: Edge;
  let edgeB: Edge;
  const refused = new Set<string>();
  let addresses: string[];

  beforeAll(async () => {
    const ports = [await freePort(), await freePort()];
    addresses = ports.map((port) => `127.0.0.1:${port}`);
    served = await openServedEdge(backend, {
      env: {
        PORTICO_PROBE_INTERVAL_SECONDS: String(INTERVAL),
        PORTICO_EDGE_PROBE_ADDRESSES: addresses.join(','),
      },
    });
    const { config, services } = served.rig;
    // Neither edge subscribes to the store's change feed: each keeps what it cached until told.
    const options = edgeOptions(config, served.store, services.box, undefined, pino({ level: 'silent' }));
    edgeA = await startEdge({ ...options, httpPort: 0, httpsPort: ports[0] as number });
    edgeB = await startEdge({
      ...options,
      httpPort: 0,
      httpsPort: ports[1] as number,
      routes: refusing(options.routes, refused),
      certificates: refusing(options.certificates, refused),
    });
    receiver = await startWebhookReceiver({ answer: true });
  });
  afterAll(async () => {
    await edgeA?.close();
    await edgeB?.close();
    await receiver?.close();
    await served?.close();
  });

  it('reports a stale certificate and a refused name within one interval, with events, and their recovery; never touches the status', async () => {
    const { rig, store } = served;
    const hook = await rig.api.call(rig.key, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['domain.degraded', 'domain.recovered'],
    });
    expect(hook.statusCode).toBe(200);
    const name = `shop.probe-${backend.name}.test`;
    await served.activate(name);
    const domainId = (await store.findDomainInStatus(name, ['active']))?.id as string;
    // Activation queued the probe, at the domain's slot within the next interval.
    const queued = await store.findJob(probeJobKey(domainId));
    expect(queued?.kind).toBe(PROBE_JOB);
    expect(Date.parse(queued?.runAt ?? '') - rig.clock.now().getTime()).toBeLessThanOrEqual(INTERVAL * 1000);
    expect((await rig.read(name)).serving).toBeNull();

    // One interval: one probe, both edges serving the current certificate through to the origin.
    const original = (await store.findCertificate(name))?.certificatePem as string;
    rig.clock.advance(INTERVAL);
    await rig.drain();
    let domain = await rig.read(name);
    expect(domain.serving).toEqual({
      checked_at: rig.clock.now().toISOString(),
      ok: true,
      edges: addresses.map((address) => ({
        address,
        ok: true,
        certificate_sha256: leafSha256(original),
        status: 200,
        error: null,
      })),
    });
    const probed = served.origin.requests.filter((r) =>
      r.headers['user-agent']?.startsWith('Portico-Serving-Probe'),
    );
    expect(probed.map((r) => [r.method, r.url, r.headers['x-forwarded-host']])).toEqual([
      ['GET', '/', name],
      ['GET', '/', name],
    ]);
    expect(receiver.events).toEqual([]);

    // A renewal edge A does not hear of, and edge B losing the name.
    const record = (await store.findCertificate(name)) as CertificateRecord;
    await store.putCertificate({ ...record, renewAt: rig.clock.now().toISOString() });
    expect(await rig.services.certificates?.renew(name, AbortSignal.timeout(30_000))).toBeUndefined();
    const renewed = (await store.findCertificate(name)) as CertificateRecord;
    const renewedSha = leafSha256(renewed.certificatePem as string);
    expect(renewedSha).not.toBe(leafSha256(original));
    refused.add(name);
    edgeB.invalidate(name);
    const jobsBefore = await certificateJobs(store, name);

    rig.clock.advance(INTERVAL);
    await rig.drain();
    domain = await rig.read(name);
    expect(domain.status).toBe('active');
    expect(domain.serving.ok).toBe(false);
    const [a, b] = domain.serving.edges;
    expect(a).toMatchObject({
      address: addresses[0],
      ok: false,
      certificate_sha256: leafSha256(original),
      status: 200,
    });
    expect(a.error).toMatch(/presented a certificate .* that is not the current one .*stale certificate/);
    expect(b).toMatchObject({ address: addresses[1], ok: false, certificate_sha256: null, status: null });
    expect(b.error).toBe(
      `${addresses[1]} refused the TLS handshake for ${name}: it sent TLS alert 40 (handshake_failure)`,
    );
    // The CLI shows it as the API gave it.
    const printed: string[] = [];
    printDomain(new Output({ stdout: { write: (text: string) => printed.push(text) }, env: {} }), domain);
    const shown = printed.join('');
    expect(shown).toMatch(/serving\s+failing at 2 of 2 edges \(probed /);
    expect(shown).toContain(`✗ ${addresses[0]}: ${a.error}`);
    expect(shown).toContain(`✗ ${addresses[1]}: ${b.error}`);
    expect(receiver.events.map((e) => e.type)).toEqual(['domain.degraded']);
    expect(receiver.events[0]?.data).toMatchObject({
      domain: name,
      status: 'active',
      serving: domain.serving,
    });
    // Nothing ordered, nothing rescheduled, the certificate row untouched by the probe.
    expect(await certificateJobs(store, name)).toEqual(jobsBefore);
    expect((await store.findCertificate(name))?.updatedAt).toBe(renewed.updatedAt);

    // Still failing a probe later: no second event.
    rig.clock.advance(INTERVAL);
    await rig.drain();
    expect((await rig.read(name)).serving.ok).toBe(false);
    expect(receiver.events).toHaveLength(1);

    // Edge A hears of the renewal at last, edge B has the name back: recovered.
    edgeA.invalidate(name);
    refused.delete(name);
    edgeB.invalidate(name);
    rig.clock.advance(INTERVAL);
    await rig.drain();
    domain = await rig.read(name);
    expect(domain.status).toBe('active');
    expect(domain.serving.ok).toBe(true);
    expect(domain.serving.edges.map((e: { certificate_sha256: string }) => e.certificate_sha256)).toEqual([
      renewedSha,
      renewedSha,
    ]);
    expect(receiver.events.map((e) => e.type)).toEqual(['domain.degraded', 'domain.recovered']);

    // The origin goes away: both edges answer with their own 502, which is a failure too.
    const dead = await freePort();
    await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}`, { origin_url: `http://127.0.0.1:${dead}` });
    edgeA.invalidate(name);
    edgeB.invalidate(name);
    rig.clock.advance(INTERVAL);
    await rig.drain();
    domain = await rig.read(name);
    expect(domain.status).toBe('active');
    expect(domain.serving.edges).toMatchObject([
      { ok: false, status: 502, certificate_sha256: renewedSha },
      { ok: false, status: 502 },
    ]);
    expect(domain.serving.edges[0].error).toMatch(/answered 502 from its own error page/);
    expect(receiver.events.map((e) => e.type)).toEqual([
      'domain.degraded',
      'domain.recovered',
      'domain.degraded',
    ]);

    // Counted by outcome, one per edge and probe.
    const counted = await rig.services.metrics?.registry
      .getSingleMetric('portico_serving_probes_total')
      ?.get();
    const byOutcome = Object.fromEntries((counted?.values ?? []).map((v) => [v.labels.outcome, v.value]));
    expect(byOutcome).toEqual({ ok: 4, certificate_mismatch: 2, tls_failed: 2, edge_error: 2 });
  });

  it('gives served domains without a probe one, at their slots (after an upgrade), and only those', async () => {
    const { rig, store } = served;
    const name = `upgraded.probe-${backend.name}.test`;
    await served.activate(name);
    const domainId = (await store.findDomainInStatus(name, ['active']))?.id as string;
    const queued = await store.findJob(probeJobKey(domainId));
    // As before migration 0018: active, and no probe.
    await store.deleteJob(probeJobKey(domainId));
    expect(await rig.services.probes.scheduleMissing()).toBeGreaterThanOrEqual(1);
    const scheduled = await store.findJob(probeJobKey(domainId));
    expect(scheduled).toMatchObject({ kind: PROBE_JOB, payload: { domainId }, orgId: queued?.orgId });
    // Its slot, wherever in the interval it falls, and only one interval ahead at most.
    const ahead = Date.parse(scheduled?.runAt ?? '') - rig.clock.now().getTime();
    expect(ahead).toBeGreaterThan(0);
    expect(ahead).toBeLessThanOrEqual(INTERVAL * 1000);
    expect((Date.parse(scheduled?.runAt ?? '') - Date.parse(queued?.runAt ?? '')) % (INTERVAL * 1000)).toBe(
      0,
    );
    // Nothing is missing now.
    expect(await rig.services.probes.scheduleMissing()).toBe(0);
  });

  it('does not judge a probe whose certificate was renewed while the edges were asked', async () => {
    const { rig, store } = served;
    const name = `renewing.probe-${backend.name}.test`;
    await served.activate(name);
    const domainId = (await store.findDomainInStatus(name, ['active']))?.id as string;
    const before = await store.findJob(probeJobKey(domainId));
    // The probe reads the certificate of a moment ago (an earlier one of the same name), the edges
    // and the store then have the current one: as if the renewal landed mid-probe.
    const earlier = (await store.findCertificate(`shop.probe-${backend.name}.test`)) as CertificateRecord;
    let reads = 0;
    const racing = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'findCertificate' && reads++ === 0) return async () => earlier;
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const probes = new ServingProbes(racing, rig.config, rig.clock);
    await probes.probe(domainId);
    expect((await rig.read(name)).serving).toBeNull();
    expect(receiver.events.filter((e) => e.data.domain === name)).toEqual([]);
    // Still probed at its next slot.
    const after = await store.findJob(probeJobKey(domainId));
    expect(after?.revision).toBeGreaterThan(before?.revision ?? 0);
    // Without the race, the same probe is judged.
    await new ServingProbes(store, rig.config, rig.clock).probe(domainId);
    expect((await rig.read(name)).serving?.edges).toHaveLength(2);
  });

  it('times a probe out at an origin that never answers, and probes the other domains meanwhile', async () => {
    const { rig, store } = served;
    // An App whose origin takes connections and never answers: the edge waits on it.
    const held = new Set<net.Socket>();
    const hung = net.createServer((socket) => held.add(socket));
    hung.listen(0, '127.0.0.1');
    await once(hung, 'listening');
    try {
      const slowApp = await createTestApp(rig.api, rig.key);
      const origin = `http://127.0.0.1:${(hung.address() as net.AddressInfo).port}`;
      await rig.api.call(rig.key, 'PATCH', `/v1/apps/${slowApp}`, { origin_url: origin });
      const slow = `slow.probe-${backend.name}.test`;
      await rig.addVerified(slow, '127.0.0.1', { key: rig.key, appId: slowApp });
      const fast = `fast.probe-${backend.name}.test`;
      await served.activate(fast);
      expect((await rig.read(slow, { key: rig.key, appId: slowApp })).status).toBe('active');

      // A worker of one slot: the slow domain's probe must end by its own timeout for the rest to run.
      const probes = new ServingProbes(store, { ...rig.config, probeTimeoutMs: 500 }, rig.clock);
      const worker = new Worker({
        store,
        handlers: domainProbeHandlers(probes),
        clock: rig.clock,
        logger: pino({ level: 'silent' }),
        concurrency: 1,
        leaseSeconds: 60,
      });
      rig.clock.advance(INTERVAL);
      await worker.drain();
      const slowServing = (await rig.read(slow, { key: rig.key, appId: slowApp })).serving;
      expect(slowServing.ok).toBe(false);
      for (const [i, edge] of slowServing.edges.entries()) {
        // The handshake held: the certificate is reported beside the timeout.
        expect(edge).toMatchObject({
          address: addresses[i],
          ok: false,
          status: null,
          certificate_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        });
        expect(edge.error).toBe(
          `${addresses[i]} did not answer for ${slow} within 500 ms (waiting for the answer)`,
        );
      }
      // The other domain was probed all the same, and answered.
      const fastServing = (await rig.read(fast)).serving;
      expect(fastServing.checked_at).toBe(rig.clock.now().toISOString());
      expect(fastServing.edges.map((edge: { status: number | null }) => edge.status)).not.toContain(null);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });

  it('ends the probes of a domain that is no longer served, without a report', async () => {
    const { rig, store } = served;
    const name = `gone.probe-${backend.name}.test`;
    await served.activate(name);
    const domainId = (await store.findDomainInStatus(name, ['active']))?.id as string;
    expect(await store.findJob(probeJobKey(domainId))).toBeDefined();
    expect((await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${name}`)).statusCode).toBe(
      200,
    );
    rig.clock.advance(INTERVAL);
    await rig.drain();
    expect(await store.findJob(probeJobKey(domainId))).toBeUndefined();
  });
});

/** The certificate jobs of a name, as stored: a probe must never add or move one. */
async function certificateJobs(store: Store, name: string) {
  return Promise.all(
    [issueJobKey(name), renewJobKey(name)].map(async (key) => {
      const job = await store.findJob(key);
      return { key, runAt: job?.runAt, revision: job?.revision };
    }),
  );
}
