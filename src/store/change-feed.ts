import { EventEmitter } from 'node:events';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { CONNECT_TIMEOUT_MS } from './postgres.js';
import type { Database } from './schema.js';
import { ALL_HOSTNAMES } from './store.js';

/**
 * "What a hostname serves has changed": the signal that lets every edge drop what it cached for a
 * name within a moment of the change, while the database stays the source of truth (caches also
 * expire on their own, so a lost signal costs seconds, never correctness).
 */
export interface ChangeFeed {
  /**
   * Announces a change. Inside a transaction it is delivered once the transaction commits: before
   * that, an edge reloading the name would only find the old state again.
   */
  publish(db: Kysely<Database>, hostname: string, pending: string[] | undefined): Promise<void>;
  /** Delivers what is pending after a commit (a no-op where the database delivers it). */
  committed(pending: string[]): void;
  /** `listener` gets each changed hostname, or `ALL_HOSTNAMES` when changes may have been missed (forget all). */
  subscribe(listener: (hostname: string) => void): () => void;
  close(): Promise<void>;
}

/** One process on SQLite: an in-process emitter is every listener there is. */
export class LocalChangeFeed implements ChangeFeed {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  async publish(_db: Kysely<Database>, hostname: string, pending: string[] | undefined): Promise<void> {
    if (pending) pending.push(hostname);
    else this.emitter.emit('change', hostname);
  }

  committed(pending: string[]): void {
    for (const hostname of pending) this.emitter.emit('change', hostname);
  }

  subscribe(listener: (hostname: string) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

const CHANNEL = 'portico_serving';

/**
 * Several nodes on PostgreSQL: `pg_notify` inside the writing transaction (PostgreSQL delivers it
 * on commit, and drops it on rollback) and one LISTEN connection per process, opened on the first
 * subscription and reopened after a failure.
 */
export class PostgresChangeFeed implements ChangeFeed {
  private readonly emitter = new EventEmitter().setMaxListeners(0);
  private client?: pg.Client;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly searchPathOptions: string | undefined,
  ) {}

  async publish(db: Kysely<Database>, hostname: string): Promise<void> {
    await sql`select pg_notify(${CHANNEL}, ${hostname})`.execute(db);
  }

  committed(): void {}

  subscribe(listener: (hostname: string) => void): () => void {
    this.emitter.on('change', listener);
    if (!this.client) void this.connect();
    return () => this.emitter.off('change', listener);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.url,
      options: this.searchPathOptions,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    this.client = client;
    client.on('notification', (message) => {
      if (message.channel === CHANNEL && message.payload) this.emitter.emit('change', message.payload);
    });
    const retry = () => {
      if (this.client !== client || this.closed) return;
      this.client = undefined;
      client.end().catch(() => {});
      setTimeout(() => void this.connect(), 1000).unref();
    };
    client.on('error', retry);
    client.on('end', retry);
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      // Changes made while no connection listened were missed: listeners forget everything.
      this.emitter.emit('change', ALL_HOSTNAMES);
    } catch {
      retry();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.emitter.removeAllListeners();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
