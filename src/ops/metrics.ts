import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../domain/clock.js';
import type { CertificateLifetimeStats, Store } from '../store/store.js';
import { EDGE_DURATION_BUCKETS, type EdgeMetricsDelta, representative } from './edge-metrics.js';

/**
 * The fractions of their lifetime left that certificates are counted below: half, the renewal
 * point (a third), the alert point (a sixth, `EXPIRY_ALERT_FRACTION`), and expiry. Fractions, not
 * days, so one alert fits 90-day and 6-day certificates alike.
 */
const LIFETIME_FRACTIONS = [1 / 2, 1 / 3, 1 / 6, 0];
const fractionLabel = (fraction: number) => String(Math.round(fraction * 1000) / 1000);

/**
 * Prometheus metrics (docs/operations.md lists and explains them). Counters count what this
 * process did; gauges about the whole system (domains by status, the job queue, certificate
 * expiry) are read from the store when scraped, so any API node reports the same totals.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly checks: Counter<'outcome'>;
  readonly certificates: Counter<'event'>;
  readonly certificateRevocations: Counter<'outcome'>;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly edgeRequests: Histogram<'status_class'>;
  readonly edgeTlsContextsBuilt: Counter;
  readonly dnsQueries: Counter<'transport' | 'rcode'>;
  readonly probes: Counter<'outcome'>;

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
      help: 'Certificate events: issued, renewed, failed (an attempt), expiring (less than a sixth of the lifetime left, unrenewed).',
      labelNames: ['event'],
      registers,
    });
    this.certificateRevocations = new Counter({
      name: 'portico_certificate_revocations_total',
      help: 'Tries at revoking the certificate of a name that left, by outcome: revoked, expired (nothing to revoke), retrying, given_up (after 10 tries; the key is deleted all the same).',
      labelNames: ['outcome'],
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
    this.dnsQueries = new Counter({
      name: 'portico_dns_queries_total',
      help: 'Queries the dns role answered, by transport (udp, tcp) and the rcode answered (NOERROR, NXDOMAIN, REFUSED, SERVFAIL: the store did not answer, FORMERR, NOTIMP), or dropped (over a limit).',
      labelNames: ['transport', 'rcode'],
      registers,
    });
    this.probes = new Counter({
      name: 'portico_serving_probes_total',
      help: 'Serving probes of one domain at one edge address, by outcome: ok, certificate_mismatch (a stale certificate), unreachable, tls_failed (the edge refused the name), edge_error (its own 404 or 5xx page), http_failed, timeout.',
      labelNames: ['outcome'],
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
    // One query for the two gauges below: a scrape collects them together.
    let lifetime: Promise<CertificateLifetimeStats> | undefined;
    const lifetimeStats = () => {
      lifetime ??= store
        .certificateLifetimeStats(clock.now().toISOString(), LIFETIME_FRACTIONS)
        .finally(() => {
          lifetime = undefined;
        });
      return lifetime;
    };
    new Gauge({
      name: 'portico_certificates_lifetime_left',
      help: 'Issued certificates with less than a fraction of their lifetime left, by that fraction (below="0.5", "0.333", "0.167", "0": expired). Renewal starts at a third; below a sixth, renewal has been failing for half its window.',
      labelNames: ['below'],
      registers,
      async collect() {
        const stats = await lifetimeStats();
        for (const [i, fraction] of LIFETIME_FRACTIONS.entries()) {
          this.set({ below: fractionLabel(fraction) }, stats.below[i] ?? 0);
        }
      },
    });
    new Gauge({
      name: 'portico_certificate_least_lifetime_left_ratio',
      help: 'The least fraction of its lifetime any issued certificate has left (1 when there is none; negative once one expired).',
      registers,
      async collect() {
        this.set((await lifetimeStats()).leastLeft ?? 1);
      },
    });
    new Gauge({
      name: 'portico_certificate_revocations_pending',
      help: 'Certificates of names that left, waiting to be revoked at the CA (their keys kept sealed until then).',
      registers,
      async collect() {
        this.set(await store.countCertificateRevocations());
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

  /** For the dns role's `onQuery`. */
  readonly countDnsQuery = (transport: string, rcode: string): void => {
    this.dnsQueries.inc({ transport, rcode });
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
