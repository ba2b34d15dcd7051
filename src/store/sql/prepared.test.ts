import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../schema.js';
import { prepared } from './prepared.js';

// An in-memory SQLite with the one table these queries touch; the store suites run the prepared
// queries of the store itself on both databases.
const raw = new BetterSqlite3(':memory:');
raw.exec(
  'create table organizations (id text primary key, name text not null, created_at text not null, domain_count integer not null)',
);
const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
afterAll(() => db.destroy());

describe('prepared', () => {
  const insert = prepared((q, { id, name }: { id: string; name: string }) =>
    q
      .insertInto('organizations')
      .values({ id, name, created_at: '2026-01-01T00:00:00.000Z', domain_count: 0 }),
  );
  const byIdOrName = prepared((q, { id, name }: { id: string; name: string }) =>
    q
      .selectFrom('organizations')
      .select(['id', 'name'])
      .where((eb) => eb.or([eb('id', '=', id), eb('name', '=', name), eb('name', '=', id)]))
      .orderBy('id'),
  );

  it('runs one compiled query with the values of each call, constants kept', async () => {
    await insert(db, { id: 'org_1', name: 'one' });
    await insert(db, { id: 'org_2', name: 'two' });
    const counts = await db.selectFrom('organizations').select('domain_count').execute();
    expect(counts).toEqual([{ domain_count: 0 }, { domain_count: 0 }]);
    // `id` is bound twice: both places get the value.
    expect((await byIdOrName(db, { id: 'org_1', name: 'nobody' })).rows).toEqual([
      { id: 'org_1', name: 'one' },
    ]);
    expect((await byIdOrName(db, { id: 'two', name: 'one' })).rows).toEqual([
      { id: 'org_1', name: 'one' },
      { id: 'org_2', name: 'two' },
    ]);
  });

  it('runs inside a transaction as on the root database', async () => {
    await db.transaction().execute(async (trx) => {
      await insert(trx, { id: 'org_3', name: 'three' });
      expect((await byIdOrName(trx, { id: 'org_3', name: '' })).rows).toHaveLength(1);
    });
  });

  it('refuses a placeholder used as a JavaScript value or inlined into the SQL text', async () => {
    // `name.length` is the placeholder's length, not the value's: the query would be wrong for every call.
    const inLogic = prepared((q, { name }: { name: string }) =>
      q.selectFrom('organizations').select('id').limit(name.length),
    );
    await expect(inLogic(db, { name: 'one' })).rejects.toThrow(/name not bound as parameters/);
    const inlined = prepared((q, { name }: { name: string }) =>
      q.selectFrom('organizations').select('id').where('name', '=', sql.lit(name)),
    );
    await expect(inlined(db, { name: 'one' })).rejects.toThrow(/not bound as parameters/);
  });
});
