import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';

/**
 * What differs between the two databases, as named capabilities rather than dialect checks
 * scattered through the queries.
 */
export interface Capabilities {
  /** `SELECT … FOR UPDATE [SKIP LOCKED]` exists (PostgreSQL). SQLite serializes writers instead. */
  rowLocks: boolean;
}

/** A query context: the root database or a transaction, plus the capabilities of its dialect. */
export interface SqlContext {
  db: Kysely<Database>;
  caps: Capabilities;
}

/** `count(*)` comes back as a string from pg (bigint) and as a number from SQLite. */
export const toCount = (value: string | number | bigint | undefined): number => Number(value ?? 0);
