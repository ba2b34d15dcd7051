import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

interface Pending<T> {
  work: (trx: Transaction<Database>) => Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

// One savepoint name serves every transaction of a batch: they run one after the other, never nested.
const SAVEPOINT = CompiledQuery.raw('SAVEPOINT txn');
const RELEASE = CompiledQuery.raw('RELEASE txn');
const ROLLBACK_TO = CompiledQuery.raw('ROLLBACK TO txn');

/** How many transactions one commit carries at most. */
const MAX_BATCH = 256;

/**
 * Group commit for SQLite. SQLite has one writer; committing costs a WAL append of every page the
 * transaction touched. Transactions that arrive while a commit is being prepared are run together
 * in one database transaction, each inside its own SAVEPOINT: one that throws is rolled back alone
 * and rejects alone, the others commit together. Nobody is answered before the COMMIT that holds
 * their writes has returned, so what was acknowledged is durable exactly as with one commit each.
 *
 * Consecutive writes to the same pages (a table's last leaf, its indexes) then cost one WAL append
 * instead of one each, which is what lets an insert-per-request API keep up with its HTTP layer.
 */
export class GroupCommitter {
  private queue: Pending<unknown>[] = [];
  private flushing = false;

  constructor(private readonly db: Kysely<Database>) {}

  run<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve, reject } as Pending<unknown>);
      if (!this.flushing) {
        this.flushing = true;
        // Let the requests already in this turn of the event loop join the batch.
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
      try {
        await this.db.transaction().execute(async (trx) => {
          for (const pending of batch) {
            await trx.executeQuery(SAVEPOINT);
            try {
              const value = await pending.work(trx);
              await trx.executeQuery(RELEASE);
              outcomes.push({ ok: true, value });
            } catch (error) {
              await trx.executeQuery(ROLLBACK_TO);
              await trx.executeQuery(RELEASE);
              outcomes.push({ ok: false, error });
            }
          }
        });
      } catch (commitError) {
        // The COMMIT itself failed (disk full, I/O error): nothing in the batch is durable.
        for (const pending of batch) pending.reject(commitError);
        continue;
      }
      for (const [index, pending] of batch.entries()) {
        const outcome = outcomes[index];
        if (outcome?.ok) pending.resolve(outcome.value);
        else pending.reject(outcome?.error);
      }
    }
    this.flushing = false;
  }
}
