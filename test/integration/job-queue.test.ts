import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId, randomAlphanumeric } from '../../src/domain/ids.js';
import { createStore } from '../../src/store/index.js';
import { migrationProvider } from '../../src/store/migrations/index.js';
import { openPostgres } from '../../src/store/postgres.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../helpers/stores.js';

const t0 = '2026-01-01T00:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(t0) + seconds * 1000).toISOString();

/** The job queue's fair shares and lease holders, on every store (the store contract's part on jobs). */
describe.each(backends)('job queue on $name', (backend) => {
  let store: Store;
  beforeAll(async () => {
    store = await backend.open();
  });
  afterAll(async () => {
    await store.close();
  });

  describe('fair shares across organizations', () => {
    const kind = 'test:fair';
    const enqueue = (key: string, orgId: string | null, runAt: string) =>
      store.enqueueJob({ kind, key, payload: {}, orgId, runAt }, newId('job'), t0);
    const claim = async (worker: string, limit: number, now: string, perOrgLimit?: number) =>
      (await store.claimJobs(worker, [kind], limit, now, perOrgLimit)).map((j) => j.key).sort();
    /** Every job of the kind gone, whoever holds it: the next test starts from an empty queue. */
    const empty = async () => {
      for (const holder of await store.leaseHolders()) await store.releaseLeases(holder);
      for (const j of await store.claimJobs('cleanup', [kind], 1000, at(10_000)))
        await store.deleteJob(j.key);
      expect(await store.countJobs(kind)).toBe(0);
    };

    it('takes the next job of each organization in turn, so one’s backlog does not hold up another’s job', async () => {
      // Organization A queued 100 jobs before B queued its one, and the platform one of its own.
      for (let i = 0; i < 100; i++) await enqueue(`a-${i}`, 'org_a', at(i));
      await enqueue('b-0', 'org_b', at(100));
      await enqueue('platform-0', null, at(101));
      // Earliest first would be a-0, a-1, a-2: B and the platform would wait for all of A's.
      expect(await claim('w1', 3, at(200))).toEqual(['a-0', 'b-0', 'platform-0']);
      expect((await store.findJob('platform-0'))?.orgId).toBeNull();
      expect((await store.findJob('b-0'))?.orgId).toBe('org_b');
      await empty();
    });

    it('counts an organization’s running jobs, on any worker, as turns it has had', async () => {
      for (let i = 0; i < 10; i++) await enqueue(`a-${i}`, 'org_a', at(i));
      expect(await claim('w1', 4, at(50))).toEqual(['a-0', 'a-1', 'a-2', 'a-3']);
      // A's 4 running hold its first turns: B's job, queued last, goes before A's fifth.
      await enqueue('b-0', 'org_b', at(60));
      expect(await claim('w2', 1, at(100))).toEqual(['b-0']);
      expect(await claim('w2', 1, at(100))).toEqual(['a-4']);
      await empty();
    });

    it('gives one organization at most perOrgLimit of a worker’s jobs, counting those it holds', async () => {
      for (let i = 0; i < 10; i++) {
        await enqueue(`a-${i}`, 'org_a', at(i));
        await enqueue(`b-${i}`, 'org_b', at(i));
      }
      expect(await claim('w1', 8, at(50), 3)).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2']);
      // Both at their limit on w1: nothing more for it, though it has room.
      expect(await claim('w1', 8, at(50), 3)).toEqual([]);
      // The limit is per worker: another takes its own share.
      expect(await claim('w2', 8, at(50), 3)).toEqual(['a-3', 'a-4', 'a-5', 'b-3', 'b-4', 'b-5']);
      // One of A's jobs on w1 is done: w1 may take one more of A's, and still none of B's.
      const a0 = await store.findJob('a-0');
      if (!a0) throw new Error('a-0 is missing');
      expect(await store.completeJob(a0, 'w1')).toBe(true);
      expect(await claim('w1', 8, at(50), 3)).toEqual(['a-6']);
      await empty();
    });
  });

  it('names every holder of a lease once', async () => {
    const kind = 'test:holders';
    for (const key of ['held-1', 'held-2', 'held-3'])
      await store.enqueueJob({ kind, key, payload: {}, orgId: null, runAt: t0 }, newId('job'), t0);
    await store.claimJobs('holder-a', [kind], 2, at(1));
    await store.claimJobs('holder-b', [kind], 2, at(1));
    const holders = async () => (await store.leaseHolders()).filter((id) => id.startsWith('holder-')).sort();
    expect(await holders()).toEqual(['holder-a', 'holder-b']);
    expect(await store.releaseLeases('holder-a')).toBe(2);
    expect(await holders()).toEqual(['holder-b']);
    await store.releaseLeases('holder-b');
    expect(await holders()).toEqual([]);
    for (const key of ['held-1', 'held-2', 'held-3']) await store.deleteJob(key);
  });
});

/**
 * A database migrated up to just before jobs had an organization, opened the way `createStore`
 * opens it; `finish()` then opens it as a store, which applies the rest.
 */
async function openBeforeJobOrganizations(name: 'sqlite' | 'postgres') {
  const before = '0007-list-order-indexes';
  if (name === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'portico-migrate-'));
    // biome-ignore lint/suspicious/noExplicitAny: the schema as it was at that migration
    const db = new Kysely<any>({
      dialect: new SqliteDialect({ database: new BetterSqlite3(path.join(dir, 'portico.db')) }),
    });
    await new Migrator({ db, provider: migrationProvider }).migrateTo(before);
    return {
      db,
      finish: async () => {
        await db.destroy();
        return createStore({ dataDir: dir });
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const url = process.env.DATABASE_URL as string;
  const schema = `t_${randomAlphanumeric(12)}`;
  const { db } = await openPostgres({ url, schema });
  await new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema }).migrateTo(before);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: the schema as it was at that migration
    db: db as Kysely<any>,
    finish: async () => {
      await db.destroy();
      return createStore({ databaseUrl: url, dataDir: tmpdir(), postgresSchema: schema });
    },
    cleanup: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

describe.each(backends)('migration 0009 on $name', (backend) => {
  it('gives the jobs queued before it the organization of what they work on', async () => {
    const { db, finish, cleanup } = await openBeforeJobOrganizations(backend.name);
    let store: Store | undefined;
    try {
      const stamps = { created_at: t0 };
      await db
        .insertInto('organizations')
        .values({ id: 'org_1', name: 'one', ...stamps })
        .execute();
      const app = { org_id: 'org_1', title: 't', ...stamps, updated_at: t0 };
      await db
        .insertInto('apps')
        .values([
          { id: 'app_1', slug: 'one', ...app },
          { id: 'app_2', slug: 'two', ...app },
        ])
        .execute();
      await db
        .insertInto('domains')
        .values({
          id: 'dom_1',
          app_id: 'app_1',
          org_id: 'org_1',
          name: 'shop.example.com',
          status: 'active',
          verification_token: 'token',
          ...stamps,
          updated_at: t0,
        })
        .execute();
      await db
        .insertInto('webhooks')
        .values({
          id: 'wh_1',
          org_id: 'org_1',
          url: 'https://example.com/',
          events: '["*"]',
          secret_enc: 'x',
          ...stamps,
        })
        .execute();
      await db
        .insertInto('events')
        .values({ id: 'evt_1', org_id: 'org_1', type: 'domain.active', payload: '{}', ...stamps })
        .execute();
      await db
        .insertInto('webhook_deliveries')
        .values({
          id: 'dlv_1',
          webhook_id: 'wh_1',
          event_id: 'evt_1',
          status: 'pending',
          ...stamps,
          updated_at: t0,
        })
        .execute();
      const certificate = { status: 'issued', ...stamps, updated_at: t0 };
      await db
        .insertInto('certificates')
        .values([
          { hostname: 'shop.example.com', domain_id: 'dom_1', app_id: 'app_1', ...certificate },
          { hostname: 'two.apps.example.net', domain_id: null, app_id: 'app_2', ...certificate },
        ])
        .execute();
      const keys = [
        'domain:verify:dom_1',
        'domain:reverify:dom_1',
        'webhook:deliver:dlv_1',
        'cert:renew:shop.example.com',
        'cert:issue:two.apps.example.net',
      ];
      const gone = ['domain:verify:dom_gone', 'cert:issue:gone.example.com', 'other:job:x'];
      await db
        .insertInto('jobs')
        .values(
          [...keys, ...gone].map((key, i) => ({
            id: `job_${i}`,
            kind: key.slice(0, key.lastIndexOf(':')),
            key,
            payload: '{}',
            run_at: t0,
            ...stamps,
          })),
        )
        .execute();

      store = await finish();
      for (const key of keys) expect((await store.findJob(key))?.orgId, key).toBe('org_1');
      // What no longer exists, or belongs to no organization, is the platform's.
      for (const key of gone) expect((await store.findJob(key))?.orgId, key).toBeNull();
    } finally {
      await store?.close();
      await cleanup();
    }
  });
});

describe('job claims on sqlite', () => {
  // The claim ranks every due job of the kinds asked for: read from `jobs_queue` in queue order it
  // costs about what the earliest-first sort did; SQLite had preferred `jobs_locked_at` for
  // `locked_at IS NULL`, then sorted every waiting job (three times slower at 100,000).
  it('reads waiting jobs from the queue index and running ones from the lease index, never the whole table', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portico-plans-'));
    const prepare = vi.spyOn(BetterSqlite3.prototype, 'prepare');
    const store = await createStore({ dataDir: dir });
    try {
      await store.claimJobs('w1', ['a:job', 'b:job'], 8, t0, 6);
      const [claim] = [...new Set(prepare.mock.calls.map(([text]) => text))].filter((text) =>
        text.includes('row_number()'),
      );
      prepare.mockRestore();
      if (!claim) throw new Error('no claim query was prepared');
      const raw = new BetterSqlite3(path.join(dir, 'portico.db'), { readonly: true });
      // Unbound values: the plan depends on the SQL and the schema, not on the values.
      const nulls = (claim.match(/\?/g) ?? []).map(() => null);
      const plan = (raw.prepare(`explain query plan ${claim}`).all(...nulls) as { detail: string }[])
        .map((row) => row.detail)
        .join('; ');
      raw.close();
      expect(plan).toMatch(/SEARCH jobs USING (COVERING )?INDEX jobs_queue/);
      expect(plan).toMatch(/SEARCH jobs USING (COVERING )?INDEX jobs_locked_at/);
      expect(plan).not.toMatch(/SCAN jobs/);
    } finally {
      prepare.mockRestore();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
