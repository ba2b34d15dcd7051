import http from 'node:http';
import tls from 'node:tls';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Edge } from '../../../src/edge/server.js';
import { startEdgeRole } from '../../../src/roles.js';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';

interface Family {
  name: string;
  type: string;
  metrics: {
    labels?: Record<string, string>;
    value?: string;
    count?: string;
    buckets?: Record<string, string>;
  }[];
}

/** `/metrics` read as Prometheus reads it: the text format parsed by a Prometheus text parser. */
describe.each(backends)('metrics on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let rig: Awaited<ReturnType<typeof openCertificateRig>>;
  let edge: Edge;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    rig = await openCertificateRig(store, dns, { PORTICO_EDGE_HTTP_PORT: '0', PORTICO_EDGE_HTTPS_PORT: '0' });
    edge = await startEdgeRole(rig.config, store, rig.services, pino({ level: 'silent' }));
  });
  afterAll(async () => {
    await edge.close();
    await rig.api.close();
    await dns.close();
    await store.close();
  });

  const scrape = async () => {
    const response = await rig.api.call(undefined, 'GET', '/metrics');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    const families = parsePrometheusTextFormat(response.body) as Family[];
    const value = (name: string, labels: Record<string, string> = {}) => {
      const family = families.find((f) => f.name === name);
      const sample = family?.metrics.find((m) =>
        Object.entries(labels).every(([k, v]) => m.labels?.[k] === v),
      );
      return Number(sample?.value ?? sample?.count ?? 0);
    };
    return { families, value, text: response.body };
  };

  it('moves the counters and gauges as a domain goes from pending to active and is served', async () => {
    const before = await scrape();
    const name = `metered.metrics-${backend.name}.com`;
    await rig.api.call(rig.key, 'POST', `/v1/apps/${rig.appId}/domains`, { domain: `waiting.${name}` });
    const pending = await scrape();
    expect(pending.value('portico_domains', { status: 'pending' })).toBe(
      before.value('portico_domains', { status: 'pending' }) + 1,
    );

    await rig.addVerified(name);
    const verified = await scrape();
    expect(verified.value('portico_dns_checks_total', { outcome: 'ok' })).toBeGreaterThan(
      before.value('portico_dns_checks_total', { outcome: 'ok' }),
    );
    // The certificate is queued: the queue shows it as due work.
    expect(verified.value('portico_jobs_due', { kind: 'cert:issue' })).toBeGreaterThanOrEqual(1);

    await rig.drain();
    const active = await scrape();
    expect(active.value('portico_domains', { status: 'active' })).toBe(
      before.value('portico_domains', { status: 'active' }) + 1,
    );
    expect(active.value('portico_certificate_events_total', { event: 'issued' })).toBeGreaterThan(
      before.value('portico_certificate_events_total', { event: 'issued' }),
    );
    expect(active.value('portico_jobs_due', { kind: 'cert:issue' })).toBe(0);
    expect(active.value('portico_certificate_soonest_expiry_days')).toBeGreaterThan(80);
    // By fraction of lifetime left: a fresh certificate is below none of the marks.
    for (const below of ['0.5', '0.333', '0.167', '0']) {
      expect(active.text).toContain(`portico_certificates_lifetime_left{below="${below}"} 0\n`);
    }
    expect(active.value('portico_certificate_least_lifetime_left_ratio')).toBeGreaterThan(0.99);
    expect(active.text).toContain('portico_certificate_revocations_pending 0\n');

    // A request the edge answers shows up under its status class.
    await new Promise<void>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port: edge.httpPort, path: '/', headers: { host: name } }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject),
    );
    const served = await scrape();
    const histogram = served.families.find((f) => f.name === 'portico_edge_request_duration_seconds');
    expect(histogram?.type).toBe('HISTOGRAM');
    expect(Number(histogram?.metrics[0]?.buckets?.['+Inf'])).toBe(1);
    // The parser keeps a histogram's buckets but not its labels: the status class is read from the text.
    expect(served.text).toContain('portico_edge_request_duration_seconds_count{status_class="3xx"} 1');
  });

  it("names the Node.js process's metrics as every Node.js exporter does, so stock dashboards and alerts work", async () => {
    const { families, value } = await scrape();
    const names = families.map((family) => family.name);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(names).toContain(name);
    }
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(names.filter((name) => name.includes('process_process'))).toEqual([]);
    // Portico's own metrics keep their prefix; the runtime's are the only ones without it.
    expect(names.filter((name) => !/^(portico|process|nodejs)_/.test(name))).toEqual([]);
  });

  it('counts the TLS contexts the edge builds, and PORTICO_EDGE_CERT_CACHE_MB bounds the ones it keeps', async () => {
    const names = ['first', 'second'].map((label) => `${label}.contexts-${backend.name}.com`);
    for (const name of names) await rig.addVerified(name);
    await rig.drain();
    /** A handshake naming `servername`, on `port`; what a browser's first visit does. */
    const handshake = (port: number, servername: string) =>
      new Promise<string | undefined>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().subjectaltname);
          socket.destroy();
        });
        socket.once('error', reject);
      });
    const [first = '', second = ''] = names;
    const built = async () => (await scrape()).value('portico_edge_tls_contexts_built_total');
    const visit = async (port: number) => {
      const before = await built();
      for (const name of [first, second, first, second]) {
        expect(await handshake(port, name)).toBe(`DNS:${name}`);
      }
      return (await built()) - before;
    };

    // Room for both: each name's context is built once, then reused.
    expect(await visit(edge.httpsPort)).toBe(2);
    // Room for one (a budget below one certificate's cost keeps the newest only): every handshake
    // evicts the other name, so each builds its context again.
    const small = await startEdgeRole(
      { ...rig.config, edgeCertCacheBytes: 1 },
      store,
      rig.services,
      pino({ level: 'silent' }),
    );
    try {
      expect(await visit(small.httpsPort)).toBe(4);
    } finally {
      await small.close();
    }
  });
});
