import {
  type DatabaseIntrospector,
  Kysely,
  PostgresDialect,
  PostgresIntrospector,
  sql,
  type TableMetadata,
} from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export interface PostgresOptions {
  url: string;
  /** A schema to create and use instead of `public` (each test suite gets its own). */
  schema?: string;
  poolSize?: number;
}

/** How long opening a connection may take before it fails. */
export const CONNECT_TIMEOUT_MS = 5_000;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * kysely's PostgreSQL introspector lists every table of every schema, asking has_schema_privilege()
 * of each schema by name: a schema that another application (or another test run) drops meanwhile
 * fails the whole listing with 3F000. kysely's migrator uses the listing only to see whether its
 * own tables exist in Portico's schema, so this one lists the tables of the current schema alone
 * (names, without their columns).
 */
class OwnSchemaIntrospector extends PostgresIntrospector {
  // biome-ignore lint/suspicious/noExplicitAny: kysely hands the introspector an untyped Kysely
  constructor(private readonly db: Kysely<any>) {
    super(db);
  }

  override async getTables(): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; schema: string; kind: string }>`
      select c.relname as name, ns.nspname as schema, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
      where ns.nspname = current_schema() and c.relkind in ('r', 'v', 'p')`.execute(this.db);
    return rows.map((row) => ({ name: row.name, schema: row.schema, isView: row.kind === 'v', columns: [] }));
  }
}

class OwnSchemaPostgresDialect extends PostgresDialect {
  // biome-ignore lint/suspicious/noExplicitAny: the signature kysely's Dialect declares
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new OwnSchemaIntrospector(db);
  }
}

export async function openPostgres({ url, schema, poolSize = 10 }: PostgresOptions): Promise<{
  db: Kysely<Database>;
  pool: pg.Pool;
}> {
  if (schema !== undefined) {
    if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${schema}`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      await client.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // A database that does not answer at all (a failover in progress, a dropped route) fails a
    // query within seconds rather than the system's TCP timeout of minutes: the edge then serves
    // from its snapshot instead of holding handshakes (src/snapshot/).
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that loses its connection emits 'error'; without a listener that kills the process.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new OwnSchemaPostgresDialect({ pool }) });
  return { db, pool };
}
