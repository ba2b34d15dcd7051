import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { randomAlphanumeric } from '../../src/domain/ids.js';
import { createStore, type Store } from '../../src/store/index.js';

/**
 * The stores every store-backed suite runs on: SQLite always, PostgreSQL when DATABASE_URL is set
 * (CI sets it). Each opened store is private to its suite: a fresh SQLite file, or a fresh
 * PostgreSQL schema dropped on close.
 */
export interface Backend {
  name: 'sqlite' | 'postgres';
  open(): Promise<Store>;
  /**
   * Two stores on one database, as two nodes have. On SQLite (one node by design) both are the
   * same store; on PostgreSQL each has its own pool and LISTEN connection. Closing the first drops
   * the database.
   */
  openPair(): Promise<[Store, Store]>;
}

const databaseUrl = process.env.DATABASE_URL;

if (!databaseUrl) {
  const line = '!'.repeat(100);
  console.warn(
    `\n${line}\n!!! PostgreSQL suites SKIPPED: DATABASE_URL is not set. Only SQLite was tested.\n!!! Set DATABASE_URL=postgres://… (as .ci/run does) to run them.\n${line}\n`,
  );
  if (process.env.CI) throw new Error('CI must test PostgreSQL: DATABASE_URL is not set');
}

async function openSqlite(): Promise<Store> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-test-'));
  const store = await createStore({ dataDir: dir });
  return withCleanup(store, async () => rmSync(dir, { recursive: true, force: true }));
}

async function openPostgres(url: string, schema = `t_${randomAlphanumeric(12)}`): Promise<Store> {
  const store = await createStore({
    databaseUrl: url,
    dataDir: tmpdir(),
    postgresSchema: schema,
    postgresPoolSize: 20,
  });
  return withCleanup(store, async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
}

function withCleanup(store: Store, cleanup: () => Promise<void>): Store {
  const close = store.close;
  store.close = async () => {
    await close();
    await cleanup();
  };
  return store;
}

async function openPostgresPair(url: string): Promise<[Store, Store]> {
  const schema = `t_${randomAlphanumeric(12)}`;
  const first = await openPostgres(url, schema);
  const second = await createStore({ databaseUrl: url, dataDir: tmpdir(), postgresSchema: schema });
  return [first, second];
}

export const backends: Backend[] = [
  {
    name: 'sqlite',
    open: openSqlite,
    openPair: async () => {
      const store = await openSqlite();
      return [store, store];
    },
  },
  ...(databaseUrl
    ? [
        {
          name: 'postgres' as const,
          open: () => openPostgres(databaseUrl),
          openPair: () => openPostgresPair(databaseUrl),
        },
      ]
    : []),
];
