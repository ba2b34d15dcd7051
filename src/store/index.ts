import path from 'node:path';
import { DEFAULT_MIGRATION_TABLE, type Kysely, Migrator, sql } from 'kysely';
import { type ChangeFeed, LocalChangeFeed, PostgresChangeFeed } from './change-feed.js';
import { GroupCommitter } from './group-commit.js';
import { migrationProvider } from './migrations/index.js';
import { openPostgres } from './postgres.js';
import type { Database } from './schema.js';
import { apiKeyQueries } from './sql/api-keys.js';
import { appQueries } from './sql/apps.js';
import { certificateQueries, challengeQueries, settingQueries } from './sql/certificates.js';
import { type Capabilities, postgresEpochSeconds, sqliteEpochSeconds } from './sql/context.js';
import { dnsChallengeQueries } from './sql/dns-challenges.js';
import { domainQueries } from './sql/domains.js';
import { idempotencyQueries } from './sql/idempotency.js';
import { jobQueries } from './sql/jobs.js';
import { organizationQueries } from './sql/organizations.js';
import { webhookQueries } from './sql/webhooks.js';
import { openSqlite } from './sqlite.js';
import type { Store } from './store.js';

export type { Store } from './store.js';

export interface StoreOptions {
  /** `postgres://…` selects PostgreSQL; otherwise SQLite in `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  /** SQLite only; see Config.sqliteSynchronous. */
  sqliteSynchronous?: 'NORMAL' | 'FULL';
  /** SQLite only: a file other than `{dataDir}/portico.db` (':memory:' for tests). */
  sqliteFile?: string;
  /** PostgreSQL only: use (and create) this schema instead of `public`. */
  postgresSchema?: string;
  postgresPoolSize?: number;
  /**
   * A process that only reads, beside the process of the same node that opened the store first
   * and keeps it open (an edge worker beside its primary, src/edge-workers/): it runs no migrations
   * (the first did, before starting it) and, on SQLite, no checkpoint thread (the first runs one;
   * more would only race it for the same pages).
   */
  secondary?: boolean;
}

/** What a bound store is made of: the same for the root store and for each transaction. */
interface Binding {
  db: Kysely<Database>;
  /** PostgreSQL: the schema holding Portico's tables; SQLite: none. */
  schema?: string;
  caps: Capabilities;
  dialect: Store['dialect'];
  close: () => Promise<void>;
  feed: ChangeFeed;
  committer?: GroupCommitter;
  /** Inside a transaction: changes to announce once it commits. */
  pending?: string[];
  /** Shared by a store and its transactions: see `queriesFor`. */
  bound: BoundQueries;
}

/** The query functions bound to one database handle: the root, or one transaction. */
type Queries = Omit<
  Store,
  | 'dialect'
  | 'transaction'
  | 'publishServingChange'
  | 'subscribeServingChanges'
  | 'ping'
  | 'migrationsApplied'
  | 'close'
>;

/**
 * Binding ~80 query functions takes a closure each. The transactions of one group commit share
 * one database handle, so the last handle's set is kept and reused while the handle is the same.
 * One entry, not a WeakMap of every handle: a WeakMap's entries outlive the young generation, and
 * a busy worker's thousands of transactions then piled up in the old one (the verification sweep's
 * peak heap grew 2.5-fold).
 */
interface BoundQueries {
  last?: { db: Kysely<Database>; queries: Queries };
}

function queriesFor(db: Kysely<Database>, caps: Capabilities, bound: BoundQueries): Queries {
  if (bound.last?.db === db) return bound.last.queries;
  const context = { db, caps };
  const queries: Queries = {
    ...organizationQueries(context),
    ...apiKeyQueries(context),
    ...appQueries(context),
    ...domainQueries(context),
    ...jobQueries(context),
    ...certificateQueries(context),
    ...challengeQueries(context),
    ...dnsChallengeQueries(context),
    ...settingQueries(context),
    ...webhookQueries(context),
    ...idempotencyQueries(context),
  };
  if (db.isTransaction) bound.last = { db, queries };
  return queries;
}

function bindStore(binding: Binding): Store {
  const { db, schema, caps, dialect, close, feed, committer, pending, bound } = binding;
  /** Runs `fn` on a store bound to `trx`, then announces its changes once the commit has happened. */
  const inTransaction = async <T>(
    run: (work: (trx: Kysely<Database>) => Promise<T>) => Promise<T>,
    fn: (tx: Store) => Promise<T>,
  ) => {
    const changes: string[] = [];
    const result = await run((trx) => fn(bindStore({ ...binding, db: trx, pending: changes })));
    feed.committed(changes);
    return result;
  };
  const own: Omit<Store, keyof Queries> = {
    dialect,
    async transaction(fn) {
      if (db.isTransaction) return fn(store);
      if (committer) return inTransaction((work) => committer.run(work), fn);
      return inTransaction((work) => db.transaction().execute(work), fn);
    },
    publishServingChange: (hostname) => feed.publish(db, hostname, pending),
    subscribeServingChanges: (listener) => feed.subscribe(listener),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async migrationsApplied() {
      // Read from the migration table itself: kysely's getMigrations() would first look the table
      // up in the catalog, a second query on every readiness probe.
      const table = schema ? sql.id(schema, DEFAULT_MIGRATION_TABLE) : sql.id(DEFAULT_MIGRATION_TABLE);
      const { rows } = await sql<{ name: string }>`select name from ${table}`.execute(db);
      const applied = new Set(rows.map((row) => row.name));
      return Object.keys(await migrationProvider.getMigrations()).every((name) => applied.has(name));
    },
    close,
  };
  // The queries are the prototype: the object made per transaction holds only what differs.
  const store = Object.assign(Object.create(queriesFor(db, caps, bound)) as Queries, own) as Store;
  return store;
}

/**
 * The migrator, told which schema its bookkeeping tables live in: without that, kysely takes any
 * schema's `kysely_migration` table for its own (another application's, another test's).
 */
function migrator(db: Kysely<Database>, schema: string | undefined): Migrator {
  return new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema });
}

/** PostgreSQL's schema for this connection (the first of its search_path), where Portico's tables are. */
async function currentSchema(db: Kysely<Database>): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) throw new Error("PostgreSQL reports no current schema: check the role's search_path");
  return schema;
}

async function migrate(db: Kysely<Database>, schema: string | undefined): Promise<void> {
  const { error, results } = await migrator(db, schema).migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`migration ${failed ?? '(unknown)'} failed: ${(error as Error).message ?? error}`);
  }
}

/** The SQLite file of a data directory. */
export const sqliteFileOf = (dataDir: string): string => path.join(dataDir, 'portico.db');

/**
 * Opens the store named by the options and brings its schema up to date. Migrations take a lock
 * (kysely's migration lock table), so nodes starting together on one PostgreSQL apply each once.
 */
export async function createStore(options: StoreOptions): Promise<Store> {
  if (options.databaseUrl) {
    const { db } = await openPostgres({
      url: options.databaseUrl,
      schema: options.postgresSchema,
      poolSize: options.postgresPoolSize,
    });
    let schema: string;
    try {
      schema = await currentSchema(db);
      if (!options.secondary) await migrate(db, schema);
    } catch (error) {
      await db.destroy();
      throw error;
    }
    const feed = new PostgresChangeFeed(
      options.databaseUrl,
      options.postgresSchema ? `-c search_path=${options.postgresSchema}` : undefined,
    );
    const close = async () => {
      await feed.close();
      await db.destroy();
    };
    return bindStore({
      db,
      schema,
      caps: { rowLocks: true, advisoryLocks: true, lateralJoins: true, epochSeconds: postgresEpochSeconds },
      dialect: 'postgres',
      close,
      feed,
      bound: {},
    });
  }
  const file = options.sqliteFile ?? sqliteFileOf(options.dataDir);
  const { db, close: closeDb } = openSqlite({
    file,
    synchronous: options.sqliteSynchronous ?? 'NORMAL',
    checkpoints: !options.secondary,
  });
  if (!options.secondary) await migrate(db, undefined);
  const feed = new LocalChangeFeed();
  const close = async () => {
    await feed.close();
    await closeDb();
  };
  return bindStore({
    db,
    caps: { rowLocks: false, advisoryLocks: false, lateralJoins: false, epochSeconds: sqliteEpochSeconds },
    dialect: 'sqlite',
    close,
    feed,
    committer: new GroupCommitter(db),
    bound: {},
  });
}
