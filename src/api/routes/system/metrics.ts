import type { Metrics } from '../../../ops/metrics.js';
import type { Api } from '../../context.js';

/**
 * Prometheus scrape endpoint. Unauthenticated, as scrapers expect: it shows counts, never a
 * tenant's name; keep the API port off the public internet or filter `/metrics` at the proxy.
 */
export function metricsRoute(api: Api, metrics: Metrics): void {
  api.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
