import pg from 'pg';
import { randomAlphanumeric } from '../../src/domain/ids.js';

/**
 * A whole PostgreSQL database of its own, for tests that start Portico as separate processes
 * (they read DATABASE_URL like any deployment). Dropped by `drop()`.
 */
export async function createScratchDatabase(
  baseUrl: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `portico_t_${randomAlphanumeric(10)}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
