import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { randomAlphanumeric } from '../../src/domain/ids.js';
import { createStore, type Store } from '../../src/store/index.js';
import type { Backend } from './stores.js';

/**
 * A store and plain SQL beside it on the same database, as an operator's `sqlite3` or `psql` sees
 * it: for asserting what is stored on disk, not what the store's methods answer.
 */
export interface StoreWithSql {
  store: Store;
  /** Runs one statement and answers its rows. Table names are unqualified. */
  query(text: string): Promise<Record<string, unknown>[]>;
  /** Opens another store on the same database (migrations run again, as at a restart). */
  reopen(): Promise<Store>;
  /**
   * Runs one migration's `up` again on the database, as an upgrade from before it would: deleting
   * its row from `kysely_migration` instead is refused once a later migration has run.
   */
  // biome-ignore lint/suspicious/noExplicitAny: migrations take an untyped Kysely, as in src/store/migrations
  runMigration(up: (db: Kysely<any>) => Promise<void>): Promise<void>;
  /** Closes the SQL connection and the first store, and deletes the database. */
  close(): Promise<void>;
}

export async function openStoreWithSql(backend: Backend['name']): Promise<StoreWithSql> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'portico-sql-'));
    const store = await createStore({ dataDir: dir });
    const raw = new BetterSqlite3(path.join(dir, 'portico.db'));
    return {
      store,
      query: async (text) => {
        const statement = raw.prepare(text);
        if (statement.reader) return statement.all() as Record<string, unknown>[];
        statement.run();
        return [];
      },
      reopen: () => createStore({ dataDir: dir }),
      runMigration: async (up) => {
        // Not destroyed: that would close `raw`, which the queries above go on using.
        await up(new Kysely({ dialect: new SqliteDialect({ database: raw }) }));
      },
      close: async () => {
        raw.close();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('PostgreSQL needs DATABASE_URL');
  const schema = `t_${randomAlphanumeric(12)}`;
  const open = () => createStore({ databaseUrl: url, dataDir: tmpdir(), postgresSchema: schema });
  const store = await open();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`SET search_path = ${schema}`);
  return {
    store,
    query: async (text) => (await client.query(text)).rows,
    reopen: open,
    runMigration: async (up) => {
      const db = new Kysely({
        dialect: new PostgresDialect({
          pool: new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 1 }),
        }),
      });
      try {
        await up(db);
      } finally {
        await db.destroy();
      }
    },
    close: async () => {
      await store.close();
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    },
  };
}
