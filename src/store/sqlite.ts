import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, type SqliteDatabase, SqliteDialect, type SqliteStatement } from 'kysely';
import { ensurePrivateDir, ensurePrivateFile, restrictToOwner } from '../private-files.js';
import type { Database } from './schema.js';

/**
 * SQLite durability (PORTICO_SQLITE_SYNCHRONOUS). In WAL mode NORMAL keeps every committed
 * transaction across a crash or `kill -9` of the process; FULL also survives a power loss.
 */
export type SqliteSynchronous = 'NORMAL' | 'FULL';

import { startCheckpointer } from './sqlite-checkpointer.js';

export interface SqliteOptions {
  /** A file path, or ':memory:' for a throwaway database. */
  file: string;
  synchronous: SqliteSynchronous;
  /** Run WAL checkpoints from a thread of this process (default): false where another process of the node does. */
  checkpoints?: boolean;
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
      if (!statement) {
        statement = db.prepare(sql) as unknown as SqliteStatement;
        // First in, first out: the working set is far smaller than the cache, so nothing hot is evicted.
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}

export function openSqlite({ file, synchronous, checkpoints = true }: SqliteOptions): {
  db: Kysely<Database>;
  raw: BetterSqlite3.Database;
  close: () => Promise<void>;
} {
  const inMemory = file === ':memory:';
  if (!inMemory) {
    ensurePrivateDir(path.dirname(file));
    // SQLite would create the database 0644 (whatever the umask), and it gives the -wal and -shm it
    // creates the database's mode: made here first, 0600, all three are owner-only. Those an
    // earlier version left (0644) are tightened too.
    ensurePrivateFile(file);
    restrictToOwner(`${file}-wal`);
    restrictToOwner(`${file}-shm`);
  }
  const raw = new BetterSqlite3(file);
  // WAL lets readers run beside the writer; with synchronous=NORMAL a committed transaction is in
  // the WAL before COMMIT returns, so it survives the process being killed (FULL: also power loss).
  raw.pragma('journal_mode = WAL');
  raw.pragma(`synchronous = ${synchronous}`);
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  // Checkpoints run beside the writer (sqlite-checkpointer.ts); the WAL file is trimmed after each reset.
  raw.pragma('journal_size_limit = 67108864');
  const checkpointer = inMemory || !checkpoints ? undefined : startCheckpointer(file);
  if (checkpointer) raw.pragma('wal_autocheckpoint = 0');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(raw) }) });
  const close = async () => {
    await checkpointer?.stop();
    await db.destroy();
  };
  return { db, raw, close };
}
