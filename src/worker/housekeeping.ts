import type { Logger } from 'pino';
import { type Clock, iso } from '../domain/clock.js';
import { IDEMPOTENCY_KEY_LIFETIME_MS } from '../domain/idempotency.js';
import type { Store } from '../store/store.js';

/** How often expired records are looked for. */
const INTERVAL_MS = 10 * 60_000;
/** Rows deleted per statement: a batch holds SQLite's single writer for a few milliseconds at most. */
const BATCH = 1_000;

/**
 * Deletes what has outlived its use, so tables that grow with traffic do not grow forever: today
 * the Idempotency-Key records, kept 24 hours (the API ignores older ones but only overwrites the
 * key that is sent again). Every worker runs it; deleting is idempotent, so several workers at once
 * only share the work.
 */
export class Housekeeping {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.running ??= this.runOnce()
        .then(() => undefined)
        .catch((error) => this.logger.warn({ err: error }, 'housekeeping failed; trying again later'))
        .finally(() => {
          this.running = undefined;
        });
    };
    tick();
    this.timer = setInterval(tick, INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; answers how many records went. */
  async runOnce(): Promise<number> {
    const cutoff = iso(new Date(this.clock.now().getTime() - IDEMPOTENCY_KEY_LIFETIME_MS));
    let deleted = 0;
    for (;;) {
      const batch = await this.store.deleteIdempotencyKeysBefore(cutoff, BATCH);
      deleted += batch;
      if (batch < BATCH) break;
      // Let requests waiting for the database in between.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (deleted > 0) this.logger.info({ deleted }, 'housekeeping: deleted expired Idempotency-Key records');
    return deleted;
  }
}
