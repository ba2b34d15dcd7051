import type { Logger } from 'pino';
import { CertificateReader } from '../acme/certificate-reader.js';
import type { Config } from '../config.js';
import type { Services } from '../services.js';
import type { Store } from '../store/store.js';
import { type Edge, startEdge } from './server.js';
import { StoreChallenges, StoreRoutes } from './store-sources.js';

/** Announced by the change feed when it may have missed changes (a reconnected LISTEN): forget everything. */
export const ALL_HOSTNAMES = '*';

/**
 * The edge role of `portico serve`: the HTTP and HTTPS listeners over the store, with their caches
 * kept honest by the store's change feed (in-process on SQLite, LISTEN/NOTIFY on PostgreSQL).
 */
export async function startEdgeRole(
  config: Config,
  store: Store,
  services: Services,
  logger: Logger,
): Promise<Edge> {
  const routes = new StoreRoutes(store, config.appsDomain);
  const edge = await startEdge({
    host: config.host,
    appsDomain: config.appsDomain,
    httpPort: config.edgeHttpPort,
    httpsPort: config.edgeHttpsPort,
    routes,
    // Read from the store whatever the issuer: a node that issues nothing still serves what is stored.
    certificates: new CertificateReader(store, services.box, config.appsDomain),
    challenges: new StoreChallenges(store),
    allowPrivateOrigins: config.allowPrivateOrigins,
    logger,
    onResponse: services.metrics?.observeEdgeResponse,
    sniCacheSize: config.edgeCertCacheSize,
    onTlsContextBuilt: services.metrics?.countTlsContextBuilt,
    // Every change that affects what a name serves is announced (below), so cached routes and
    // certificates can live long: a short lifetime would only rebuild unchanged TLS contexts
    // (about 1 ms each) for every name in use, every minute. "Not served" stays short (5 s),
    // since a name that becomes served is announced too but costs nothing to look up again.
    cacheTtlMs: 10 * 60_000,
  });
  const unsubscribe = store.subscribeServingChanges((hostname) =>
    hostname === ALL_HOSTNAMES ? edge.invalidateAll() : edge.invalidate(hostname),
  );
  return {
    get httpPort() {
      return edge.httpPort;
    },
    get httpsPort() {
      return edge.httpsPort;
    },
    invalidate: (hostname) => edge.invalidate(hostname),
    invalidateAll: () => edge.invalidateAll(),
    close: async () => {
      unsubscribe();
      await edge.close();
    },
  };
}
