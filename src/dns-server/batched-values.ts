import type { ChallengeValues } from './responder.js';

/** One read of the values at several labels (DnsChallengeStore.listDnsChallengeValues). */
export type ReadValues = (labels: readonly string[]) => Promise<{ label: string; value: string }[]>;

/** Labels one read asks for at most; the rest wait for the next read. */
const MAX_BATCH = 500;

/**
 * Challenge values read in batches, never from a cache: every answer comes from a read that
 * started after its query arrived.
 *
 * One read is in flight at a time. The first query starts a read at once; the queries that arrive
 * while it runs wait, and the next read asks for all their labels together as soon as it ends. So
 * a lone query costs one read, as without batching, and a busy node makes one read per round trip
 * to the store instead of one per query (on PostgreSQL, a round trip is most of a query's cost).
 *
 * Why this keeps answers right where a cache would not: the issuer writes a record, then asks the
 * CA to validate; the CA's query arrives after the write committed, and the read that answers it
 * starts after it arrived, so it sees the record (PostgreSQL's READ COMMITTED statement and
 * SQLite's WAL read transaction both see everything committed before they start). A cache, or
 * sharing a read already in flight, could answer from a read that began before the commit.
 */
export function batchedValues(read: ReadValues): ChallengeValues {
  let reading = false;
  /** Queries waiting for the next read, by label. */
  let waiting = new Map<
    string,
    { resolve: (values: string[]) => void; reject: (error: unknown) => void }[]
  >();

  const next = (): void => {
    if (reading || waiting.size === 0) return;
    let batch = waiting;
    if (waiting.size <= MAX_BATCH) {
      waiting = new Map();
    } else {
      batch = new Map([...waiting].slice(0, MAX_BATCH));
      for (const label of batch.keys()) waiting.delete(label);
    }
    reading = true;
    read([...batch.keys()])
      .then(
        (rows) => {
          const found = new Map<string, string[]>();
          for (const { label, value } of rows) found.set(label, [...(found.get(label) ?? []), value]);
          for (const [label, queries] of batch)
            for (const query of queries) query.resolve(found.get(label) ?? []);
        },
        (error: unknown) => {
          for (const queries of batch.values()) for (const query of queries) query.reject(error);
        },
      )
      .finally(() => {
        reading = false;
        next();
      });
  };

  return (label) =>
    new Promise<string[]>((resolve, reject) => {
      const queries = waiting.get(label);
      if (queries) queries.push({ resolve, reject });
      else waiting.set(label, [{ resolve, reject }]);
      next();
    });
}
