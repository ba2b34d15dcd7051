import path from 'node:path';
import { type Kysely, Migrator, sql } from 'kysely';
import { GroupCommitter } from './group-commit.js';
import { migrationProvider } from './migrations/index.js';
import { openPostgres } from './postgres.js';
import type { Database } from './schema.js';
import { apiKeyQueries } from './sql/api-keys.js';
import { appQueries } from './sql/apps.js';
import { certificateQueries, challengeQueries, settingQueries } from './sql/certificates.js';
import type { Capabilities } from './sql/context.js';
import { domainQueries } from './sql/domains.js';
import { jobQueries } from './sql/jobs.js';
import { organizationQueries } from './sql/organizations.js';
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
}

function bindStore(
  db: Kysely<Database>,
  caps: Capabilities,
  dialect: Store['dialect'],
  close: () => Promise<void>,
  committer?: GroupCommitter,
): Store {
  const context = { db, caps };
  const store: Store = {
    dialect,
    ...organizationQueries(context),
    ...apiKeyQueries(context),
    ...appQueries(context),
    ...domainQueries(context),
    ...jobQueries(context),
    ...certificateQueries(context),
    ...challengeQueries(context),
    ...settingQueries(context),
    async transaction(fn) {
      if (db.isTransaction) return fn(store);
      if (committer) return committer.run((trx) => fn(bindStore(trx, caps, dialect, close)));
      return db.transaction().execute((trx) => fn(bindStore(trx, caps, dialect, close)));
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    async migrationsApplied() {
      const migrations = await new Migrator({ db, provider: migrationProvider }).getMigrations();
      return migrations.every((migration) => migration.executedAt !== undefined);
    },
    close,
  };
  return store;
}

async function migrate(db: Kysely<Database>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`migration ${failed ?? '(unknown)'} failed: ${(error as Error).message ?? error}`);
  }
}

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
    try {
      await migrate(db);
    } catch (error) {
      await db.destroy();
      throw error;
    }
    return bindStore(db, { rowLocks: true }, 'postgres', () => db.destroy());
  }
  const file = options.sqliteFile ?? path.join(options.dataDir, 'portico.db');
  const { db, close } = openSqlite({ file, synchronous: options.sqliteSynchronous ?? 'NORMAL' });
  await migrate(db);
  return bindStore(db, { rowLocks: false }, 'sqlite', close, new GroupCommitter(db));
}
