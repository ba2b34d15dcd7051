import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, type SqliteDatabase, SqliteDialect, type SqliteStatement } from 'kysely';
import type { SqliteSynchronous } from '../config.js';
import type { Database } from './schema.js';

export interface SqliteOptions {
  /** A file path, or ':memory:' for a throwaway database. */
  file: string;
  synchronous: SqliteSynchronous;
}

/** How many distinct SQL texts keep a prepared statement; queries come from a small set of shapes. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew; preparing costs more than running a point query, so this keeps
 * the last few hundred prepared statements by SQL text.
 */
function withStatementCache(db: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => db.close(),
    prepare(sql: string): SqliteStatement {
      let statement = cache.get(sql);
      if (statement) {
        // Refresh its place so the map's insertion order stays least-recently-used first.
        cache.delete(sql);
      } else {
        statement = db.prepare(sql) as unknown as SqliteStatement;
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

export function openSqlite({ file, synchronous }: SqliteOptions): {
  db: Kysely<Database>;
  raw: BetterSqlite3.Database;
} {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const raw = new BetterSqlite3(file);
  // WAL lets readers run beside the writer; with synchronous=NORMAL a committed transaction is in
  // the WAL before COMMIT returns, so it survives the process being killed (FULL: also power loss).
  raw.pragma('journal_mode = WAL');
  raw.pragma(`synchronous = ${synchronous}`);
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(raw) }) });
  return { db, raw };
}
