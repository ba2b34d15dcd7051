import {
  type Expression,
  type Kysely,
  type RawBuilder,
  type Selectable,
  type SelectQueryBuilder,
  sql,
} from 'kysely';
import type { Database } from '../schema.js';
import type { Page, PageOf } from '../store.js';

/**
 * What differs between the two databases, as named capabilities rather than dialect checks
 * scattered through the queries.
 */
export interface Capabilities {
  /** `SELECT … FOR UPDATE [SKIP LOCKED]` exists (PostgreSQL). SQLite serializes writers instead. */
  rowLocks: boolean;
  /** `pg_advisory_xact_lock` exists (PostgreSQL): a lock on a name rather than on a row. */
  advisoryLocks: boolean;
  /** `JOIN LATERAL` exists (PostgreSQL). SQLite reaches the same rows with a correlated `IN (…)`. */
  lateralJoins: boolean;
  /**
   * Seconds since 1970 of an ISO 8601 timestamp held as text (a column or a value), as a number
   * SQL can compute with: the two dialects spell date arithmetic differently.
   */
  epochSeconds(text: Expression<string | null>): RawBuilder<number>;
}

/** `epochSeconds` of PostgreSQL: the text cast to a timestamp. */
export const postgresEpochSeconds = (text: Expression<string | null>): RawBuilder<number> =>
  sql<number>`extract(epoch from cast(${text} as timestamptz))`;

/** `epochSeconds` of SQLite: from its Julian day number (1970-01-01 is day 2440587.5). */
export const sqliteEpochSeconds = (text: Expression<string | null>): RawBuilder<number> =>
  sql<number>`((julianday(${text}) - 2440587.5) * 86400.0)`;

/** A query context: the root database or a transaction, plus the capabilities of its dialect. */
export interface SqlContext {
  db: Kysely<Database>;
  caps: Capabilities;
}

/** `count(*)` comes back as a string from pg (bigint) and as a number from SQLite. */
export const toCount = (value: string | number | bigint | undefined): number => Number(value ?? 0);

/** Tables listed page by page, in creation order: each has `created_at` and a unique `id`. */
type ListedTable = 'apps' | 'domains' | 'webhooks' | 'webhook_deliveries';

/**
 * One page of the rows `filtered` selects, in creation order (`id` breaks ties), with the total
 * count: the query every list endpoint runs, written once.
 */
export async function listPage<TB extends ListedTable, Row>(
  filtered: SelectQueryBuilder<Database, TB, object>,
  { limit, offset }: Page,
  toRow: (row: Selectable<Database[TB]>) => Row,
  direction: 'asc' | 'desc' = 'asc',
): Promise<PageOf<Row>> {
  const [rows, count] = await Promise.all([
    filtered
      .selectAll()
      .orderBy(sql.ref('created_at'), direction)
      .orderBy(sql.ref('id'), direction)
      .limit(limit)
      .offset(offset)
      .execute(),
    filtered.select((eb) => eb.fn.countAll().as('n')).executeTakeFirst(),
  ]);
  return {
    // `selectAll()` on one table is that table's row; kysely cannot say so for a generic table.
    rows: (rows as unknown as Selectable<Database[TB]>[]).map(toRow),
    total: toCount((count as { n?: string | number } | undefined)?.n),
  };
}
