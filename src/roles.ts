import type { FastifyInstance } from 'fastify';
import { CertificateReader } from './acme/certificate-reader.js';
import type { Config } from './config.js';
import { batchedValues } from './dns-server/batched-values.js';
import { type DnsListener, startDnsServer } from './dns-server/server.js';
import { type Clock, iso } from './domain/clock.js';
import { ROUTING_PROOF_KEY_PURPOSE } from './domain/routing-proof.js';
import { type Edge, type EdgeOptions, startEdge } from './edge/server.js';
import { StoreChallenges, StoreRoutes, StoreRoutingProofs } from './edge/store-sources.js';
import type { Logger } from './logger.js';
import type { Metrics } from './ops/metrics.js';
import { ensurePrivateDir } from './private-files.js';
import type { SecretBox } from './secrets/secret-box.js';
import type { Services } from './services.js';
import { snapshotFile } from './snapshot/snapshot-file.js';
import { SnapshotReader, type SnapshotState } from './snapshot/snapshot-reader.js';
import { SnapshotWriter } from './snapshot/snapshot-writer.js';
import { ALL_HOSTNAMES, type Store } from './store/store.js';
import { Housekeeping } from './worker/housekeeping.js';
import { Worker } from './worker/runner.js';

/**
 * The roles of `portico serve`, each started from the configuration and the services of
 * `services.ts` over one store, each answering how to stop it. Which roles run, in what order, and
 * what is said about them is `cli/serve.ts`'s part.
 */

/** What every role starts from. */
export interface RoleDeps {
  config: Config;
  store: Store;
  services: Services;
  clock: Clock;
  logger: Logger;
  /**
   * This machine and data directory (`nodeId()` of worker/lease-holder.ts), in the names of the
   * worker's leases, so a restarted node frees at once what its killed predecessor held.
   */
  nodeId?: string;
}

/** Ends a role: a listener stops taking traffic, the worker finishes or aborts its jobs and releases them. */
export type Stop = () => Promise<void>;

/** Where the edge reports its answers and TLS context builds: `Metrics`, or an edge worker's batch. */
export interface EdgeMetricsSink {
  observeEdgeResponse(status: number, seconds: number): void;
  countTlsContextBuilt(): void;
}

/**
 * The edge as every process of the edge role runs it: this one (`startEdgeRole`) or each edge
 * worker (src/edge-workers/edge-worker.ts), so both serve alike.
 */
export function edgeOptions(
  config: Config,
  store: Store,
  box: SecretBox,
  metrics: EdgeMetricsSink | undefined,
  logger: Logger,
  snapshot?: SnapshotReader,
): EdgeOptions {
  return {
    fallback: snapshot,
    host: config.host,
    appsDomain: config.appsDomain,
    httpPort: config.edgeHttpPort,
    httpsPort: config.edgeHttpsPort,
    routes: new StoreRoutes(store, config.appsDomain),
    // Read from the store whatever the issuer: a node that issues nothing still serves what is stored.
    certificates: new CertificateReader(store, box, config.appsDomain),
    challenges: new StoreChallenges(store),
    routingProofs: new StoreRoutingProofs(store, box.deriveKey(ROUTING_PROOF_KEY_PURPOSE)),
    allowPrivateOrigins: config.allowPrivateOrigins,
    logger,
    onResponse: metrics?.observeEdgeResponse,
    certCacheBytes: config.edgeCertCacheBytes,
    onTlsContextBuilt: metrics?.countTlsContextBuilt,
    // Every change that affects what a name serves is announced (below), so cached routes and
    // certificates can live long: a short lifetime would only rebuild unchanged TLS contexts
    // (about 1 ms each) for every name in use, every minute. "Not served" stays short (5 s),
    // since a name that becomes served is announced too but costs nothing to look up again.
    cacheTtlMs: 10 * 60_000,
  };
}

/**
 * Tells the edge of a change the store announced: one name forgotten, or, when changes may have
 * been missed (a LISTEN reconnected), every name read again on its next use without dropping what
 * is served, since the database may still be coming back.
 */
export function applyServingChange(edge: Pick<Edge, 'invalidate' | 'expireAll'>, hostname: string): void {
  if (hostname === ALL_HOSTNAMES) edge.expireAll();
  else edge.invalidate(hostname);
}

/** The node's snapshot as an edge process serves from it when the store fails (src/snapshot/). */
export function openSnapshotReader(config: Config, box: SecretBox, logger: Logger): SnapshotReader {
  return new SnapshotReader({
    file: snapshotFile(config.dataDir),
    box,
    maxAgeMs: config.edgeSnapshotMaxAgeSeconds * 1000,
    logger,
  });
}

/**
 * While `snapshot` is being served from, asks the store every second whether it answers again, so an
 * edge process with no traffic does not go on saying (in `/readyz`) that it serves from the
 * snapshot. Stops with the returned function.
 */
export function watchStoreReturn(store: Pick<Store, 'ping'>, snapshot: SnapshotReader): () => void {
  const timer = setInterval(() => {
    if (snapshot.state().servingSince)
      store.ping().then(
        () => snapshot.storeAnswered(),
        () => {},
      );
  }, 1_000);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Keeps the node's snapshot current from the store and its change feed. Started once per node by
 * the process that runs the edge role (the primary, with edge workers): see snapshot-writer.ts.
 */
export function startSnapshotWriter(
  config: Config,
  store: Store,
  box: SecretBox,
  logger: Logger,
): SnapshotWriter {
  ensurePrivateDir(config.dataDir);
  const writer = new SnapshotWriter({
    store,
    appsDomain: config.appsDomain,
    certificates: new CertificateReader(store, box, config.appsDomain),
    file: snapshotFile(config.dataDir),
    logger,
  });
  writer.start();
  return writer;
}

/**
 * The edge in this process: the HTTP and HTTPS listeners over the store, with their caches kept
 * honest by the store's change feed (in-process on SQLite, LISTEN/NOTIFY on PostgreSQL). `close()`
 * stops it. `portico serve` runs it so when PORTICO_EDGE_WORKERS is 1; with more, it runs
 * src/edge-workers/ instead, whose workers each run the edge of `edgeOptions`.
 */
export async function startEdgeRole(
  config: Config,
  store: Store,
  services: Pick<Services, 'box' | 'metrics'>,
  logger: Logger,
  snapshot?: SnapshotReader,
): Promise<Edge> {
  const edge = await startEdge(edgeOptions(config, store, services.box, services.metrics, logger, snapshot));
  const unsubscribe = store.subscribeServingChanges((hostname) => applyServingChange(edge, hostname));
  const unwatch = snapshot ? watchStoreReturn(store, snapshot) : () => {};
  return {
    get httpPort() {
      return edge.httpPort;
    },
    get httpsPort() {
      return edge.httpsPort;
    },
    invalidate: (hostname) => edge.invalidate(hostname),
    invalidateAll: () => edge.invalidateAll(),
    expireAll: () => edge.expireAll(),
    close: async () => {
      unsubscribe();
      unwatch();
      await edge.close();
      snapshot?.close();
    },
  };
}

/**
 * The API, listening on PORTICO_HOST and PORTICO_API_PORT. `edgeHttpsPort` is the port this
 * process's edge really serves HTTPS on (the one bound when PORTICO_EDGE_HTTPS_PORT is 0), shown in
 * domains' `url`. Answers the bound port; a listen that fails closes the API before it throws.
 */
export async function startApiRole(
  { config, store, services, clock, logger }: RoleDeps,
  edgeHttpsPort = config.edgeHttpsPort,
  edgeState?: () => SnapshotState | undefined,
): Promise<{ port: number; stop: Stop }> {
  // Loaded only with the API role: an edge- or worker-only process needs none of Fastify's routes,
  // schemas and docs, and starts faster and smaller without them.
  const { buildApi } = await import('./app.js');
  const api = await buildApi({
    config: { ...config, edgeHttpsPort },
    store,
    clock,
    logger,
    services,
    edgeState,
  });
  try {
    await listenQuietly(api, logger, config);
  } catch (error) {
    await api.close();
    throw error;
  }
  const address = api.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : config.apiPort,
    stop: () => api.close(),
  };
}

/**
 * Fastify logs "Server listening at …" on every listen, with no option against it (fastify/help#641);
 * the API's own start-up line says more, so the root logger is silenced for that one call, as the
 * Fastify maintainers suggest. Loggers already made from it keep their level.
 */
async function listenQuietly(api: FastifyInstance, logger: Logger, config: Config): Promise<void> {
  const level = logger.level;
  logger.level = 'silent';
  try {
    await api.listen({ host: config.host, port: config.apiPort });
  } finally {
    logger.level = level;
  }
}

/**
 * The dns role: the authoritative server of PORTICO_ACME_DNS_ZONE on PORTICO_DNS_LISTEN (UDP and
 * TCP), answering each query from a read of the store that starts after the query arrived
 * (batched: dns-server/batched-values.ts), so a challenge any worker wrote is answered by every dns
 * node from its next query on. Needs no services: it reads the store only.
 */
export async function startDnsRole({
  config,
  store,
  clock,
  logger,
  metrics,
}: Pick<RoleDeps, 'config' | 'store' | 'clock' | 'logger'> & { metrics?: Metrics }): Promise<DnsListener> {
  const zone = config.acmeDnsZone;
  // loadConfig refuses the role without a zone; this keeps the type honest.
  if (zone === undefined) throw new Error('the dns role needs PORTICO_ACME_DNS_ZONE');
  return startDnsServer({
    host: config.dnsListen.host,
    port: config.dnsListen.port,
    zone,
    nameservers: config.dnsNameservers,
    // Each batch's `now` is read when its read starts: after every query it answers arrived.
    values: batchedValues((labels) => store.listDnsChallengeValues(labels, iso(clock.now()))),
    logger: logger.child({ role: 'dns' }),
    now: () => clock.now(),
    onQuery: metrics?.countDnsQuery,
  });
}

/** The worker: the job loop over every handler of the services, and the store's housekeeping. */
export function startWorkerRole({ config, store, services, clock, logger, nodeId }: RoleDeps): {
  id: string;
  stop: Stop;
} {
  const log = logger.child({ role: 'worker' });
  const worker = new Worker({
    store,
    handlers: services.handlers,
    clock,
    logger: log,
    concurrency: config.workerConcurrency,
    orgConcurrency: config.workerOrgConcurrency,
    leaseSeconds: config.jobLeaseSeconds,
    nodeId,
  });
  worker.start();
  // Served domains without a probe (after an upgrade, or probes turned on) get one; later ones get
  // theirs when they become active.
  if (config.probeIntervalSeconds > 0 && !services.probes.enabled) {
    log.info(
      'probes: no edge address to probe (this node runs no edge on a known port): serving probes are off; set PORTICO_EDGE_PROBE_ADDRESSES',
    );
  }
  services.probes
    .scheduleMissing(log)
    .catch((error) =>
      log.warn({ err: error }, 'probes: scheduling served domains failed; next start retries'),
    );
  const housekeeping = new Housekeeping(store, clock, log);
  housekeeping.start();
  return {
    id: worker.id,
    stop: async () => {
      await housekeeping.stop();
      await worker.stop();
    },
  };
}
