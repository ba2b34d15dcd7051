import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { addSeconds, type Clock, iso } from '../domain/clock.js';
import type { Job, JobOutcome, Store } from '../store/store.js';
import { holderId, isGoneFromThisNode, parseHolder } from './lease-holder.js';

/** What a job handler answers: nothing when done, or when to try again and why. */

export interface JobHandler {
  kind: string;
  /**
   * Does the job. It must re-check that the work is still needed (the world may have changed since
   * the job was queued) and stop when `signal` aborts (timeout, shutdown). Throwing is a failure
   * that is retried on the backoff schedule below.
   */
  run(job: Job, signal: AbortSignal): Promise<JobOutcome>;
  /** The longest one run may take (the worker renews its lease meanwhile). */
  timeoutMs?: number;
}

/**
 * After a handler throws, how long until the next attempt, by attempts so far. A fault that
 * clears quickly (a restarted database, a blip) is retried within the minute; one that persists
 * costs a try an hour, never a busy loop.
 *
 *   attempt   1     2     3      4      5+
 *   retry in  15 s  1 min 5 min  20 min 1 h
 */
const RETRY_SECONDS = [15, 60, 5 * 60, 20 * 60, 3600];
export const retryDelaySeconds = (attempts: number) =>
  RETRY_SECONDS[Math.min(attempts, RETRY_SECONDS.length) - 1] ?? 3600;

export interface WorkerOptions {
  store: Store;
  handlers: readonly JobHandler[];
  clock: Clock;
  logger: Logger;
  /** Jobs run at once; the rest wait in the queue, so one slow domain never holds up the others. */
  concurrency: number;
  /**
   * Jobs of one organization run at once, at most (PORTICO_WORKER_ORG_CONCURRENCY): the other slots
   * stay free for other organizations' work, so one tenant's slow jobs cannot fill the worker.
   * Defaults to `orgConcurrencyFor(concurrency)`.
   */
  orgConcurrency?: number;
  leaseSeconds: number;
  /** How often an idle worker looks for due jobs. */
  pollIntervalMs?: number;
  /**
   * This machine and data directory (`nodeId()` of lease-holder.ts): the worker frees the leases
   * of this node's processes that are gone. Defaults to the host name alone.
   */
  nodeId?: string;
  workerId?: string;
}

/**
 * How many of a worker's slots one organization may fill by default: three quarters, leaving at
 * least one for everyone else (32 slots: 24). With one slot there is nothing to leave.
 */
export const orgConcurrencyFor = (concurrency: number) =>
  Math.max(1, concurrency - Math.max(1, Math.floor(concurrency / 4)));

/**
 * The job loop (docs/architecture.md, "Jobs and leases"): lease due jobs, run each under a
 * timeout with bounded concurrency, record the outcome, and free leases whose holder died.
 */
export class Worker {
  readonly id: string;
  private readonly handlers: Map<string, JobHandler>;
  private readonly running = new Map<string, { promise: Promise<void>; abort: AbortController }>();
  private stopping = false;
  private loop?: Promise<void>;
  private wakeUp?: () => void;
  private lastSweep = 0;

  private readonly node: string;

  constructor(private readonly options: WorkerOptions) {
    this.node = options.nodeId ?? hostname();
    this.id = options.workerId ?? holderId('worker', this.node);
    this.handlers = new Map(options.handlers.map((handler) => [handler.kind, handler]));
  }

  start(): void {
    this.loop ??= this.run();
    this.startHeartbeat();
  }

  private heartbeat?: NodeJS.Timeout;

  /**
   * Renews the leases of running jobs every third of the lease time, so a job that takes longer
   * than the lease (an ACME order under load) is never taken over by another worker while this one
   * is alive; only a worker that died stops renewing, and its jobs are freed a lease later.
   */
  private startHeartbeat(): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(
      () => {
        const ids = [...this.running.keys()];
        this.options.store
          .extendLeases(this.id, ids, iso(this.options.clock.now()))
          .catch((error) => this.options.logger.warn({ err: error }, 'worker: renewing leases failed'));
      },
      Math.max(1000, (this.options.leaseSeconds * 1000) / 3),
    );
    this.heartbeat.unref();
  }

  /** A job was queued in this process: look now instead of at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Runs due jobs until none is left, then resolves. For tests and one-shot use; a serving process
   * calls `start()` instead.
   */
  async drain(): Promise<void> {
    this.lastSweep = 0;
    await this.sweep();
    for (;;) {
      // Refill free slots as soon as any job ends, as the serving loop does.
      await this.claimAndStart();
      if (this.running.size === 0) return;
      await Promise.race([...this.running.values()].map((entry) => entry.promise));
    }
  }

  /**
   * Graceful stop: no new jobs; running ones get `graceMs` to finish, then are aborted; every lease
   * this worker still holds is released so another worker takes the job at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    const all = () => Promise.all([...this.running.values()].map((entry) => entry.promise));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const entry of this.running.values()) entry.abort.abort(new Error('worker stopping'));
    await all();
    await this.loop;
    clearInterval(this.heartbeat);
    await this.options.store.releaseLeases(this.id);
  }

  private async run(): Promise<void> {
    const pollMs = this.options.pollIntervalMs ?? 1000;
    while (!this.stopping) {
      let claimed = 0;
      try {
        await this.sweep();
        claimed = await this.claimAndStart();
      } catch (error) {
        this.options.logger.error({ err: error }, 'worker: claiming jobs failed; retrying');
      }
      if (claimed === 0 || this.running.size >= this.options.concurrency) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeUp = undefined;
      }
    }
  }

  /**
   * Frees the leases of this node's processes that are gone (at start: the previous incarnation
   * killed or crashed), then leases older than the lease time, at most once per half lease.
   */
  private async sweep(): Promise<void> {
    const now = this.options.clock.now();
    if (now.getTime() - this.lastSweep < (this.options.leaseSeconds * 1000) / 2) return;
    this.lastSweep = now.getTime();
    const { store, logger } = this.options;
    for (const id of await store.leaseHolders()) {
      const holder = parseHolder(id);
      if (!holder || !isGoneFromThisNode(holder, this.node)) continue;
      const freed = await store.releaseLeases(id);
      if (freed > 0)
        logger.warn({ freed, holder: id }, 'worker: freed the leases of a process of this node that is gone');
    }
    const freed = await store.releaseExpiredLeases(iso(addSeconds(now, -this.options.leaseSeconds)));
    if (freed > 0) logger.warn({ freed }, 'worker: freed the leases of jobs whose worker stopped answering');
  }

  private async claimAndStart(): Promise<number> {
    const free = this.options.concurrency - this.running.size;
    if (free <= 0 || this.stopping) return 0;
    const { concurrency, orgConcurrency = orgConcurrencyFor(concurrency) } = this.options;
    const jobs = await this.options.store.claimJobs(
      this.id,
      [...this.handlers.keys()],
      free,
      iso(this.options.clock.now()),
      orgConcurrency,
    );
    for (const job of jobs) {
      const abort = new AbortController();
      const promise = this.execute(job, abort).finally(() => {
        this.running.delete(job.id);
        this.wakeUp?.();
      });
      this.running.set(job.id, { promise, abort });
    }
    return jobs.length;
  }

  private async execute(job: Job, abort: AbortController): Promise<void> {
    const handler = this.handlers.get(job.kind);
    if (!handler) return;
    const { store, clock, logger } = this.options;
    const timeoutMs = handler.timeoutMs ?? 60_000;
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const outcome = await handler.run(job, signal);
      if (outcome) await store.rescheduleJob(job, this.id, iso(outcome.retryAt), outcome.error);
      else await store.completeJob(job, this.id);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const retryAt = addSeconds(clock.now(), retryDelaySeconds(job.attempts));
      logger.warn({ job: job.key, attempts: job.attempts, err: message }, 'worker: job failed; will retry');
      try {
        await store.rescheduleJob(job, this.id, iso(retryAt), message);
      } catch (storeError) {
        // The lease will expire and another worker will take the job.
        logger.error({ job: job.key, err: storeError }, 'worker: could not record a failed job');
      }
    }
  }
}
