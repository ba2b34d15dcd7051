import type { Logger } from 'pino';
import { type Clock, iso } from '../domain/clock.js';
import { IDEMPOTENCY_KEY_LIFETIME_MS } from '../domain/idempotency.js';
import type { Store } from '../store/store.js';

/** How often expired records are looked for. */
const INTERVAL_MS = 10 * 60_000;
/**
 * How long events and webhook deliveries stay in the delivery log (`GET …/deliveries`): 30 days,
 * as Stripe keeps events. A delivery still being retried is kept whatever its age.
 */
export const WEBHOOK_HISTORY_DAYS = 30;
/** Rows deleted per statement: a batch holds SQLite's single writer for a few milliseconds at most. */
const BATCH = 1_000;

/** What one pass deleted. */
export interface HousekeepingPass {
  idempotencyKeys: number;
  deliveries: number;
  events: number;
  dnsChallenges: number;
}

/**
 * Deletes what has outlived its use, so tables that grow with traffic do not grow forever: the
 * Idempotency-Key records after their 24 hours (the API ignores older ones but only overwrites a
 * key that is sent again), the webhook delivery log after WEBHOOK_HISTORY_DAYS, and DNS-01
 * challenge records past their expiry (the dns role stopped answering them then; an issuer that
 * finished removed its own, so these are a crashed one's). Every worker
 * runs it; deleting is idempotent, so several workers at once only share the work.
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

  /** One pass, each table in batches; answers how many records went. */
  async runOnce(): Promise<HousekeepingPass> {
    const now = this.clock.now().getTime();
    const keysCutoff = iso(new Date(now - IDEMPOTENCY_KEY_LIFETIME_MS));
    const historyCutoff = iso(new Date(now - WEBHOOK_HISTORY_DAYS * 24 * 3600_000));
    const pass: HousekeepingPass = { idempotencyKeys: 0, deliveries: 0, events: 0, dnsChallenges: 0 };
    for (;;) {
      const keys = await this.store.deleteIdempotencyKeysBefore(keysCutoff, BATCH);
      const history = await this.store.deleteWebhookHistoryBefore(historyCutoff, BATCH);
      const challenges = await this.store.deleteExpiredDnsChallenges(iso(new Date(now)), BATCH);
      pass.idempotencyKeys += keys;
      pass.deliveries += history.deliveries;
      pass.events += history.events;
      pass.dnsChallenges += challenges;
      if (keys < BATCH && history.deliveries < BATCH && history.events < BATCH && challenges < BATCH) break;
      // Let requests waiting for the database in between.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (pass.idempotencyKeys + pass.deliveries + pass.events + pass.dnsChallenges > 0)
      this.logger.info(pass, 'housekeeping: deleted expired records');
    return pass;
  }
}
