import cluster from 'node:cluster';
import { type Config, loadConfig } from '../config.js';
import { type Edge, startEdge } from '../edge/server.js';
import { createLogger, type Logger } from '../logger.js';
import { EdgeMetricsBatch } from '../ops/edge-metrics.js';
import { applyServingChange, edgeOptions, openSnapshotReader, watchStoreReturn } from '../roles.js';
import { openSecretBox } from '../secrets/secret-box.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import { deferStore } from '../store/deferred-store.js';
import { createStore, type Store } from '../store/index.js';
import { type FromEdgeWorker, isEdgeMessage, type ToEdgeWorker } from './messages.js';

/** How often a worker sends what it counted to the primary. */
const METRICS_EVERY_MS = 1_000;
/**
 * An edge worker's PostgreSQL connections: it reads only on a cache miss (a name's route, its
 * certificate, a challenge), one row at a time, and a many-core machine runs many workers.
 */
const POOL_SIZE = 4;

/**
 * One edge worker, forked by the primary (primary.ts) as `portico serve --edge-worker`: the edge
 * of the edge role (roles.ts `edgeOptions`, as a single-process `serve` runs it), with its own
 * store connection and caches, on the ports the primary shares. It reads the configuration from
 * the environment the primary gives it, as `serve` did; it hears of changes from the primary, not
 * from the store, and counts its metrics for the primary.
 *
 * It drains (stops accepting, finishes what is in flight, exits) when the primary says so or on
 * SIGTERM or SIGINT of its own, which a Ctrl-C or a service manager's stop sends the whole process
 * group; a second signal exits at once. Should the primary die, Node's cluster ends the worker.
 */
export async function runEdgeWorker(env: NodeJS.ProcessEnv): Promise<number> {
  const worker = cluster.worker;
  if (!worker) {
    process.stderr.write('portico: --edge-worker is for the edge processes `portico serve` starts itself\n');
    return 2;
  }
  let edge: Edge | undefined;
  let drain!: () => void;
  const drainRequested = new Promise<void>((resolve) => {
    drain = resolve;
  });
  // Listened for first: a change announced while this worker starts is not needed (nothing is
  // cached yet, and what it loads comes from the store after the change), a drain is.
  process.on('message', (message: unknown) => {
    if (!isEdgeMessage(message)) return;
    const received = message as ToEdgeWorker;
    if (received.type === 'portico:drain') drain();
    else if (received.type === 'portico:serving-change' && edge) applyServingChange(edge, received.hostname);
  });
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    process.once(signal, () => {
      drain();
      process.once(signal, () => process.exit(code));
    });
  }

  let store: Store | undefined;
  let logger: Logger | undefined;
  let snapshot: SnapshotReader | undefined;
  let unwatch = () => {};
  const metrics = new EdgeMetricsBatch();
  try {
    const config: Config = loadConfig(env);
    const log = createLogger(config.logLevel, config.logFormat).child({ role: 'edge', worker: worker.id });
    logger = log;
    const open = () =>
      createStore({
        databaseUrl: config.databaseUrl,
        dataDir: config.dataDir,
        sqliteSynchronous: config.sqliteSynchronous,
        postgresPoolSize: POOL_SIZE,
        secondary: true,
      });
    try {
      store = await open();
    } catch (error) {
      // Started (or restarted) while PostgreSQL is down: serve from the snapshot until it answers.
      if (!config.databaseUrl) throw error;
      log.warn({ err: error }, 'store not reachable: serving from the snapshot and trying the store again');
      store = deferStore(open, error).store;
    }
    const box = openSecretBox(config);
    snapshot = openSnapshotReader(config, box, log);
    edge = await startEdge(edgeOptions(config, store, box, metrics, log, snapshot));
    unwatch = watchStoreReturn(store, snapshot);
  } catch (error) {
    const { message, code, port } = error as NodeJS.ErrnoException & { port?: number };
    await send({ type: 'portico:start-failed', message: String(message ?? error), code, port });
    await store?.close().catch(() => {});
    return leave(1);
  }
  await send({ type: 'portico:listening', httpPort: edge.httpPort, httpsPort: edge.httpsPort });

  let lastState = '';
  const sendMetrics = async () => {
    const delta = metrics.take();
    if (delta) await send({ type: 'portico:metrics', delta });
    const state = snapshot?.state();
    const message = {
      type: 'portico:snapshot-state' as const,
      servingSince: state?.servingSince?.toISOString() ?? null,
      takenAt: state?.takenAt?.toISOString() ?? null,
    };
    const text = JSON.stringify(message);
    if (text !== lastState) {
      lastState = text;
      await send(message);
    }
  };
  const timer = setInterval(() => void sendMetrics(), METRICS_EVERY_MS);
  timer.unref();

  await drainRequested;
  unwatch();
  await edge.close();
  snapshot?.close();
  clearInterval(timer);
  // What the last requests counted, before the channel closes.
  await sendMetrics();
  await store.close().catch((err: unknown) => logger?.warn({ err }, 'edge: closing the store failed'));
  return leave(0);
}

/** To the primary; resolves once written (or found impossible: the primary is gone). */
function send(message: FromEdgeWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) {
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

/**
 * Disconnects from the primary and lets the process end. A handle left open by mistake must not
 * keep alive a worker that no longer serves: it exits anyway a moment later.
 */
function leave(code: number): number {
  cluster.worker?.disconnect();
  setTimeout(() => process.exit(code), 2_000).unref();
  return code;
}
