import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../domain/clock.js';
import type { Store } from '../store/store.js';
import { EDGE_DURATION_BUCKETS, type EdgeMetricsDelta, representative } from './edge-metrics.js';

/**
 * Prometheus metrics (docs/operations.md lists and explains them). Counters count what this
 * process did; gauges about the whole system (domains by status, the job queue, certificate
 * expiry) are read from the store when scraped, so any API node reports the same totals.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly checks: Counter<'outcome'>;
  readonly certificates: Counter<'event'>;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly edgeRequests: Histogram<'status_class'>;
  readonly edgeTlsContextsBuilt: Counter;

  constructor(store: Store, clock: Clock) {
    const registers = [this.registry];
    // The runtime's metrics under their standard names (process_*, nodejs_*), the ones every
    // Prometheus client and Node.js dashboard uses; a prefix made them portico_process_process_*.
    collectDefaultMetrics({ register: this.registry });
    this.checks = new Counter({
      name: 'portico_dns_checks_total',
      help: 'DNS checks of domains, by outcome: ok, failed (DNS answered, records wrong or missing), inconclusive (no answer).',
      labelNames: ['outcome'],
      registers,
    });
    this.certificates = new Counter({
      name: 'portico_certificate_events_total',
      help: 'Certificate issuance outcomes: issued, renewed, failed.',
      labelNames: ['event'],
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'portico_webhook_delivery_attempts_total',
      help: 'Webhook delivery attempts, by outcome: delivered, retrying, failed.',
      labelNames: ['outcome'],
      registers,
    });
    this.edgeRequests = new Histogram({
      name: 'portico_edge_request_duration_seconds',
      help: 'Requests answered by the edge, by status class (2xx, 3xx, 4xx, 5xx), with their duration.',
      labelNames: ['status_class'],
      buckets: [...EDGE_DURATION_BUCKETS],
      registers,
    });
    this.edgeTlsContextsBuilt = new Counter({
      name: 'portico_edge_tls_contexts_built_total',
      help: 'TLS contexts the edge built for certificates: once per name and renewal when PORTICO_EDGE_CERT_CACHE_MB holds every name in use; a steady climb means it does not.',
      registers,
    });
    new Gauge({
      name: 'portico_domains',
      help: 'Domains by status, across all organizations.',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        for (const { status, count } of await store.countDomainsByStatus()) this.set({ status }, count);
      },
    });
    // prom-client collects every metric at once, so each gauge reads what it shows itself.
    new Gauge({
      name: 'portico_jobs_due',
      help: 'Jobs due and not yet taken by a worker, by kind.',
      labelNames: ['kind'],
      registers,
      async collect() {
        this.reset();
        for (const { kind, due } of await store.jobQueueStats(clock.now().toISOString()))
          this.set({ kind }, due);
      },
    });
    new Gauge({
      name: 'portico_jobs_lag_seconds',
      help: 'How late the oldest due job is, by kind: a growing lag means the workers do not keep up.',
      labelNames: ['kind'],
      registers,
      async collect() {
        const now = clock.now();
        this.reset();
        for (const { kind, oldestRunAt } of await store.jobQueueStats(now.toISOString())) {
          this.set({ kind }, oldestRunAt ? Math.max(0, (now.getTime() - Date.parse(oldestRunAt)) / 1000) : 0);
        }
      },
    });
    const expiryStats = () => {
      const now = clock.now().getTime();
      return store
        .certificateExpiryStats(new Date(now + 14 * 86_400_000).toISOString())
        .then((stats) => ({ now, ...stats }));
    };
    new Gauge({
      name: 'portico_certificates_expiring_within_14_days',
      help: 'Issued certificates that expire within 14 days: renewal is failing for these.',
      registers,
      async collect() {
        this.set((await expiryStats()).expiringSoon);
      },
    });
    new Gauge({
      name: 'portico_certificate_soonest_expiry_days',
      help: 'Days until the soonest expiry of any issued certificate (0 when there is none).',
      registers,
      async collect() {
        const { now, soonestNotAfter } = await expiryStats();
        this.set(soonestNotAfter ? (Date.parse(soonestNotAfter) - now) / 86_400_000 : 0);
      },
    });
  }

  /** For the edge's `onTlsContextBuilt`. */
  readonly countTlsContextBuilt = (): void => {
    this.edgeTlsContextsBuilt.inc();
  };

  /** For the edge's `onResponse`. */
  readonly observeEdgeResponse = (status: number, seconds: number): void => {
    this.edgeRequests.observe({ status_class: `${Math.floor(status / 100)}xx` }, seconds);
  };

  /**
   * What an edge worker counted (ops/edge-metrics.ts), added to this process's edge metrics. Each
   * bucket's answers are observed at their mean duration: bucket counts, count and sum come out as
   * if observed one by one, at one observation per answer (prom-client's histogram takes no weight).
   */
  addEdgeMetrics(delta: EdgeMetricsDelta): void {
    for (const [statusClass, bucket, count, seconds] of delta.responses) {
      const value = representative(bucket, count, seconds);
      const labels = { status_class: statusClass };
      for (let i = 0; i < count; i++) this.edgeRequests.observe(labels, value);
    }
    if (delta.tlsContextsBuilt > 0) this.edgeTlsContextsBuilt.inc(delta.tlsContextsBuilt);
  }
}
