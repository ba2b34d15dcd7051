import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import type { Logger } from '../logger.js';
import type { EdgeMetricsDelta } from '../ops/edge-metrics.js';
import { PROJECT_ROOT } from '../project-root.js';
import type { SnapshotState } from '../snapshot/snapshot-reader.js';
import type { Store } from '../store/store.js';
import { EDGE_WORKER_FLAG, type FromEdgeWorker, isEdgeMessage, type ToEdgeWorker } from './messages.js';
import { withEdgeEnvironment, withEdgeNodeFlags } from './node-flags.js';

/**
 * The edge on every core (PORTICO_EDGE_WORKERS > 1): `portico serve` stays the primary, running
 * the api and worker roles as ever, and forks that many edge workers (edge-worker.ts) with
 * node:cluster, which share the edge's HTTP and HTTPS ports.
 *
 * - Ports: the primary binds each port once and hands every new connection to a worker in turn
 *   (cluster's round-robin, set below). With PORTICO_EDGE_*_PORT=0 every worker gets the same free
 *   ports, which their `listening` messages tell the primary (shown in domains' `url` and the
 *   start-up line).
 * - Changes: the primary relays its store's change feed to every worker. One way for both stores:
 *   on SQLite the feed is in-process, so nothing else could reach the workers; on PostgreSQL it
 *   keeps one LISTEN connection per node rather than one per worker, and a worker replaced later
 *   needs nothing set up. A reconnected LISTEN's "forget everything" is relayed like any change.
 *   A worker still starting may miss a change: its caches are empty, and it reads the store after.
 * - Metrics: workers send what they counted every second (ops/edge-metrics.ts); the primary adds
 *   it to its own metrics, which the API's /metrics shows.
 * - A worker that dies is replaced, after a delay that grows while replacements keep dying young
 *   (a crash loop does not spin); the others keep serving meanwhile.
 * - `close()` drains every worker (each stops accepting, finishes its requests in flight, exits),
 *   killing those still there after `drainTimeoutMs`.
 */

export interface EdgeWorkersOptions {
  /** Edge workers to keep running (PORTICO_EDGE_WORKERS). */
  count: number;
  /** The environment `serve` read its configuration from: each worker reads the same. */
  env: NodeJS.ProcessEnv;
  /** Its change feed is relayed to the workers. */
  store: Pick<Store, 'subscribeServingChanges'>;
  /** Told what the workers counted; none in tests that do not look. */
  metrics?: { addEdgeMetrics(delta: EdgeMetricsDelta): void };
  logger: Logger;
  /**
   * How long `close()` waits for workers to drain before killing them: the edge's own deadline for
   * requests in flight (10 s, edge/server.ts) and time to exit.
   */
  drainTimeoutMs?: number;
}

export interface EdgeWorkers {
  /** The ports the workers share (the bound ones when the settings say 0). */
  readonly httpPort: number;
  readonly httpsPort: number;
  /** Workers running now, by pid. */
  pids(): number[];
  /**
   * Where the workers serve from, for `/readyz`: from the snapshot since the earliest time any
   * worker began to (each reports its own), else from the store.
   */
  snapshotState(): SnapshotState;
  /** Drains every worker; resolves once all have exited. */
  close(): Promise<void>;
}

/**
 * Delays before a dead worker's replacement starts, by how many replacements in a row died young
 * (within STABLE_AFTER_MS of starting). Never none: a signal sent to the whole process group (a
 * Ctrl-C, systemd's stop) reaches the workers too, and the primary must see its own before it
 * decides a worker that drained needs replacing.
 */
const RESTART_DELAYS_MS = [250, 500, 1_000, 2_000, 5_000, 10_000, 30_000];
/** A worker that ran this long before dying was not crash-looping: the next replacement starts quickly. */
const STABLE_AFTER_MS = 60_000;

interface Member {
  worker: Worker;
  pid: number;
  startedAt: number;
  listening: boolean;
  /** What it last said of where it serves from. */
  servingSince: string | null;
  takenAt: string | null;
  /** Settles once the worker listens (or failed to). */
  ready: Promise<{ httpPort: number; httpsPort: number }>;
  exited: Promise<void>;
}

/** Forks the workers and resolves once every one listens; if any cannot, stops them all and throws its error. */
export async function startEdgeWorkers(options: EdgeWorkersOptions): Promise<EdgeWorkers> {
  const pool = new EdgeWorkerPool(options);
  try {
    const ports = await pool.start();
    return {
      httpPort: ports.httpPort,
      httpsPort: ports.httpsPort,
      pids: () => pool.pids(),
      snapshotState: () => pool.snapshotState(),
      close: () => pool.close(),
    };
  } catch (error) {
    await pool.close();
    throw error;
  }
}

class EdgeWorkerPool {
  private readonly members = new Map<number, Member>();
  private readonly restarts = new Set<NodeJS.Timeout>();
  private readonly logger: Logger;
  private unsubscribe: (() => void) | undefined;
  private stopping = false;
  /** Set once every first worker listens: until then a death fails the start instead. */
  private started = false;
  private closing: Promise<void> | undefined;
  /** Replacements in a row that died young. */
  private youngDeaths = 0;

  constructor(private readonly options: EdgeWorkersOptions) {
    this.logger = options.logger;
    // Round-robin (the default except on Windows), set so no NODE_CLUSTER_SCHED_POLICY changes it:
    // the primary holds each listening socket, so the port stays open while a worker is replaced
    // and connections are spread evenly; with the kernel choosing (SCHED_NONE), Linux wakes the
    // same few workers for most connections.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    // Forked from `portico` itself, whatever script started this process, with its Node options.
    cluster.setupPrimary({
      exec: path.join(PROJECT_ROOT, 'bin', 'portico.js'),
      args: ['serve', `--${EDGE_WORKER_FLAG}`],
      // This process's Node options, and the edge's own memory bound (node-flags.ts).
      execArgv: withEdgeNodeFlags(process.execArgv),
    });
  }

  async start(): Promise<{ httpPort: number; httpsPort: number }> {
    // Subscribed before the first fork, so no change goes unrelayed once a worker has loaded anything.
    this.unsubscribe = this.options.store.subscribeServingChanges((hostname) =>
      this.broadcast({ type: 'portico:serving-change', hostname }),
    );
    const started = Array.from({ length: this.options.count }, () => this.fork());
    const [first] = await Promise.all(started.map((member) => member.ready));
    if (!first) throw new Error('PORTICO_EDGE_WORKERS must be at least 1');
    this.started = true;
    return first;
  }

  pids(): number[] {
    return [...this.members.values()].map((member) => member.pid);
  }

  snapshotState(): SnapshotState {
    const serving = [...this.members.values()].filter((member) => member.servingSince !== null);
    if (serving.length === 0) return { servingSince: undefined, takenAt: undefined };
    const earliest = serving.reduce((a, b) => ((a.servingSince ?? '') <= (b.servingSince ?? '') ? a : b));
    return {
      servingSince: new Date(earliest.servingSince as string),
      takenAt: earliest.takenAt === null ? undefined : new Date(earliest.takenAt),
    };
  }

  private fork(): Member {
    // The edge's malloc setting (node-flags.ts) unless the operator chose their own.
    const worker = cluster.fork(withEdgeEnvironment(this.options.env));
    let resolveReady!: (ports: { httpPort: number; httpsPort: number }) => void;
    let rejectReady!: (error: Error) => void;
    const ready = new Promise<{ httpPort: number; httpsPort: number }>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // Only `start()` awaits it: a replacement that fails is reported by its exit.
    ready.catch(() => {});
    const member: Member = {
      worker,
      pid: worker.process.pid ?? 0,
      startedAt: Date.now(),
      listening: false,
      servingSince: null,
      takenAt: null,
      ready,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
    };
    this.members.set(worker.id, member);
    worker.on('message', (message: unknown) => {
      if (!isEdgeMessage(message)) return;
      const received = message as FromEdgeWorker;
      switch (received.type) {
        case 'portico:listening':
          member.listening = true;
          this.logger.info({ worker: worker.id, pid: member.pid }, 'edge: worker started');
          resolveReady({ httpPort: received.httpPort, httpsPort: received.httpsPort });
          // A drain sent while it was still loading may have come before it listened for one.
          if (this.stopping) send(worker, { type: 'portico:drain' });
          return;
        case 'portico:start-failed':
          rejectReady(
            Object.assign(new Error(received.message), { code: received.code, port: received.port }),
          );
          return;
        case 'portico:metrics':
          this.options.metrics?.addEdgeMetrics(received.delta);
          return;
        case 'portico:snapshot-state':
          member.servingSince = received.servingSince;
          member.takenAt = received.takenAt;
          return;
      }
    });
    // A write to a worker that just died fails here rather than as an uncaught 'error'.
    worker.on('error', (err: Error) => this.logger.debug({ err, worker: worker.id }, 'edge: worker channel'));
    worker.once('exit', (code: number | null, signal: string | null) => {
      this.members.delete(worker.id);
      rejectReady(new Error(`edge worker ${member.pid} exited (${signal ?? code}) before it listened`));
      if (this.started && !this.stopping) this.replace(member, code, signal);
    });
    return member;
  }

  private replace(dead: Member, code: number | null, signal: string | null): void {
    const lived = Date.now() - dead.startedAt;
    this.youngDeaths = lived >= STABLE_AFTER_MS ? 0 : this.youngDeaths + 1;
    const delayMs = RESTART_DELAYS_MS[Math.min(this.youngDeaths, RESTART_DELAYS_MS.length - 1)] as number;
    this.logger.warn(
      {
        worker: dead.worker.id,
        pid: dead.pid,
        code,
        signal,
        livedMs: lived,
        restartInMs: delayMs,
        running: this.members.size,
      },
      'edge: worker exited; starting another',
    );
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (!this.stopping) this.fork();
    }, delayMs);
    this.restarts.add(timer);
  }

  private broadcast(message: ToEdgeWorker): void {
    for (const { worker } of this.members.values()) send(worker, message);
  }

  close(): Promise<void> {
    this.closing ??= this.drainAll();
    return this.closing;
  }

  private async drainAll(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    const members = [...this.members.values()];
    this.broadcast({ type: 'portico:drain' });
    const exited = Promise.all(members.map((member) => member.exited));
    const deadline = setTimeout(() => {
      for (const member of members) {
        if (member.worker.isDead()) continue;
        this.logger.warn(
          { worker: member.worker.id, pid: member.pid },
          'edge: worker did not drain in time; killing it',
        );
        member.worker.process.kill('SIGKILL');
      }
    }, this.options.drainTimeoutMs ?? 15_000);
    try {
      await exited;
    } finally {
      clearTimeout(deadline);
      // Kept until the workers are gone: a change announced while they drain still reaches them.
      this.unsubscribe?.();
    }
  }
}

/** Sends if the worker is still connected; a failure (it died meanwhile) is its exit's to report. */
function send(worker: Worker, message: ToEdgeWorker): void {
  if (worker.isConnected()) worker.send(message, undefined, () => {});
}
