import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { newId, randomAlphanumeric } from '../../../src/domain/ids.js';
import { createStore } from '../../../src/store/index.js';
import { type Domain, type Store, UniqueViolation } from '../../../src/store/store.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

/** The store contract (src/store/store.ts), one suite for both implementations. */
describe.each(backends)('store contract on $name', (backend) => {
  let store: Store;
  let orgId: string;
  const t0 = '2026-01-01T00:00:00.000Z';
  const at = (seconds: number) => new Date(Date.parse(t0) + seconds * 1000).toISOString();

  beforeAll(async () => {
    store = await backend.open();
    orgId = (await store.ensureOrganization('contract', newId('org'), t0)).id;
  });
  afterAll(async () => {
    await store.close();
  });

  const newApp = async (slug = `s-${newId('app').slice(4)}`) => {
    const app = {
      id: newId('app'),
      orgId,
      slug,
      title: slug,
      description: null,
      originUrl: null,
      createdAt: t0,
      updatedAt: t0,
    };
    await store.insertApp(app);
    return app;
  };
  const newDomain = (appId: string, name: string, extra: Partial<Domain> = {}): Domain => ({
    id: newId('dom'),
    appId,
    orgId,
    name,
    status: 'pending',
    isPrimary: false,
    verificationToken: 'token',
    createdAt: t0,
    updatedAt: t0,
    verifiedAt: null,
    verifyingSince: null,
    lastCheckedAt: null,
    nextCheckAt: null,
    verificationErrors: [],
    routingObserved: [],
    routingVia: null,
    failureStreak: 0,
    serving: null,
    ...extra,
  });

  it('is migrated and reachable', async () => {
    await store.ping();
    expect(await store.migrationsApplied()).toBe(true);
  });

  it.runIf(backend.name === 'postgres')(
    'migrates and answers whether it is migrated while other schemas of the database are created and dropped',
    async () => {
      // Other applications, or other nodes' test runs, share the database: their schemas come and
      // go. A readiness probe must not fail because one went while the probe was looking.
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      let churning = true;
      const churn = (async () => {
        while (churning) {
          const other = `churn_${randomAlphanumeric(10)}`;
          await admin.query(`CREATE SCHEMA ${other}; CREATE TABLE ${other}.t (id int)`);
          await admin.query(`DROP SCHEMA ${other} CASCADE`);
        }
      })();
      try {
        for (let i = 0; i < 200; i++) expect(await store.migrationsApplied()).toBe(true);
        // Opening a store migrates, and kysely's migrator looks at the catalog too.
        for (let i = 0; i < 5; i++) await (await backend.open()).close();
      } finally {
        churning = false;
        await churn;
        await admin.end();
      }
    },
  );

  it('ensureOrganization gives concurrent callers the same organization', async () => {
    const orgs = await Promise.all(
      Array.from({ length: 10 }, () => store.ensureOrganization('same', newId('org'), t0)),
    );
    expect(new Set(orgs.map((o) => o.id)).size).toBe(1);
  });

  it('lists API keys without their hashes, by organization, and deletes one for good', async () => {
    const keyOrg = await store.ensureOrganization(`keys-${newId('org').slice(4)}`, newId('org'), t0);
    const key = (id: string, scope: 'read' | 'write', createdAt: string) => ({
      id,
      orgId: keyOrg.id,
      name: `label-${id}`,
      scope,
      lookup: id.slice(-16).padStart(16, '0'),
      hash: 'ab'.repeat(32),
      createdAt,
    });
    const [first, second] = [newId('key'), newId('key')] as [string, string];
    await store.insertApiKey(key(second, 'read', at(2)));
    await store.insertApiKey(key(first, 'write', at(1)));

    const listed = await store.listApiKeys(keyOrg.name);
    expect(listed).toEqual([
      {
        id: first,
        orgId: keyOrg.id,
        orgName: keyOrg.name,
        name: `label-${first}`,
        scope: 'write',
        createdAt: at(1),
      },
      {
        id: second,
        orgId: keyOrg.id,
        orgName: keyOrg.name,
        name: `label-${second}`,
        scope: 'read',
        createdAt: at(2),
      },
    ]);
    expect((await store.listApiKeys()).map((k) => k.id)).toEqual(expect.arrayContaining([first, second]));
    expect(await store.listApiKeys('no-such-organization')).toEqual([]);

    expect(await store.deleteApiKey(first)).toEqual(listed[0]);
    expect(await store.findApiKeysByLookup(key(first, 'write', t0).lookup)).toEqual([]);
    expect(await store.deleteApiKey(first)).toBeUndefined();
    expect((await store.listApiKeys(keyOrg.name)).map((k) => k.id)).toEqual([second]);
  });

  it('deletes finished webhook deliveries and unreferenced events before a cutoff, keeping pending ones', async () => {
    const webhookId = newId('wh');
    await store.insertWebhook({
      id: webhookId,
      orgId,
      url: 'https://hooks.example.com/portico',
      events: ['*'],
      secretEnc: 'sealed',
      createdAt: t0,
    });
    const event = async (createdAt: string) => {
      const id = newId('evt');
      await store.insertEvent({ id, orgId, type: 'domain.verified', payload: { n: 1 }, createdAt });
      return id;
    };
    const delivery = async (
      eventId: string,
      status: 'pending' | 'delivered' | 'failed',
      createdAt: string,
    ) => {
      const id = newId('dlv');
      await store.insertDelivery({
        id,
        webhookId,
        eventId,
        status,
        attempts: 1,
        responseStatus: null,
        lastError: null,
        createdAt,
        updatedAt: createdAt,
      });
      return id;
    };
    // Old (t0 + 1..3 s), with a finished delivery, a pending one, and none; then one after the cutoff.
    const delivered = await event(at(1));
    const deliveredId = await delivery(delivered, 'delivered', at(1));
    const failedId = await delivery(await event(at(2)), 'failed', at(2));
    const retrying = await event(at(2));
    const pendingId = await delivery(retrying, 'pending', at(2));
    const bare = await event(at(3));
    const recent = await event(at(100));
    const recentId = await delivery(recent, 'delivered', at(100));

    // A batch of one: the oldest finished delivery, then the oldest event nothing refers to.
    expect(await store.deleteWebhookHistoryBefore(at(50), 1)).toEqual({ deliveries: 1, events: 1 });
    expect(await store.findDelivery(deliveredId)).toBeUndefined();
    expect(await store.findEvent(delivered)).toBeUndefined();
    expect(await store.deleteWebhookHistoryBefore(at(50), 100)).toEqual({ deliveries: 1, events: 2 });
    expect(await store.findDelivery(failedId)).toBeUndefined();
    expect(await store.findEvent(bare)).toBeUndefined();
    expect(await store.deleteWebhookHistoryBefore(at(50), 100)).toEqual({ deliveries: 0, events: 0 });
    expect(await store.findDelivery(pendingId)).toMatchObject({ status: 'pending' });
    expect(await store.findEvent(retrying)).toBeDefined();
    expect(await store.findDelivery(recentId)).toBeDefined();
    expect(await store.findEvent(recent)).toBeDefined();
    const found = await store.findEvents([recent, retrying, bare, 'evt_missing']);
    expect(found.map((e) => e.id).sort()).toEqual([recent, retrying].sort());
    expect(found[0]).toMatchObject({ orgId, type: 'domain.verified', payload: { n: 1 } });
  });

  it('translates unique violations into UniqueViolation with the index name', async () => {
    const app = await newApp();
    await expect(newApp(app.slug)).rejects.toEqual(new UniqueViolation('apps_slug_key'));
    await store.insertDomain(newDomain(app.id, 'unique.example.com'));
    await expect(store.insertDomain(newDomain(app.id, 'unique.example.com'))).rejects.toEqual(
      new UniqueViolation('domains_org_name_key'),
    );
    await store.insertDomain(newDomain(app.id, 'p1.example.com', { isPrimary: true }));
    await expect(
      store.insertDomain(newDomain(app.id, 'p2.example.com', { isPrimary: true })),
    ).rejects.toEqual(new UniqueViolation('domains_one_primary_per_app'));
  });

  it('rolls a transaction back when its function throws, and commits when it resolves', async () => {
    const app = await newApp();
    await expect(
      store.transaction(async (tx) => {
        await tx.insertDomain(newDomain(app.id, 'rolled-back.example.com'));
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await store.findDomain(app.id, 'rolled-back.example.com')).toBeUndefined();
    await store.transaction((tx) => tx.insertDomain(newDomain(app.id, 'committed.example.com')));
    expect(await store.findDomain(app.id, 'committed.example.com')).toBeDefined();
  });

  it('deleting an app deletes its domains', async () => {
    const app = await newApp();
    const domain = newDomain(app.id, 'cascade.example.com');
    await store.insertDomain(domain);
    expect(await store.deleteApp(orgId, app.id)).toBe(true);
    expect(await store.findDomainById(domain.id)).toBeUndefined();
    expect(await store.deleteApp(orgId, app.id)).toBe(false);
  });

  it('pages through every app and every claim in given statuses, in key order (the edge snapshot)', async () => {
    const [first, second] = [await newApp(), await newApp()];
    const suffix = `.${newId('dom').slice(4).toLowerCase()}.pages.example.com`;
    const claims = [
      newDomain(first.id, `b${suffix}`, { status: 'active', isPrimary: true }),
      newDomain(first.id, `a${suffix}`, { status: 'active' }),
      newDomain(second.id, `c${suffix}`, { status: 'moved' }),
      newDomain(second.id, `d${suffix}`, { status: 'active' }),
    ];
    for (const claim of claims) await store.insertDomain(claim);
    const all = async <T>(page: (after: string) => Promise<T[]>, keyOf: (row: T) => string) => {
      const rows: T[] = [];
      for (let after = ''; ; ) {
        const next = await page(after);
        rows.push(...next);
        if (next.length < 2) return rows;
        after = keyOf(next.at(-1) as T);
      }
    };
    const apps = await all(
      (after) => store.listAllApps(after, 2),
      (app) => app.id,
    );
    // Each once (the database's collation orders them; paging follows it, whatever it is).
    const ids = apps.map((app) => app.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining([first.id, second.id]));
    const served = await all(
      (after) => store.listDomainsInStatus(['active'], after, 2),
      (domain) => domain.name,
    );
    expect(served.filter((domain) => domain.name.endsWith(suffix))).toEqual([
      { name: `a${suffix}`, appId: first.id, isPrimary: false },
      { name: `b${suffix}`, appId: first.id, isPrimary: true },
      { name: `d${suffix}`, appId: second.id, isPrimary: false },
    ]);
  });

  it('scopes apps by organization', async () => {
    const app = await newApp();
    const other = await store.ensureOrganization('other', newId('org'), t0);
    expect(await store.findApp(other.id, app.id)).toBeUndefined();
    expect(await store.updateApp(other.id, app.id, { title: 'x', updatedAt: t0 })).toBeUndefined();
    expect(await store.deleteApp(other.id, app.id)).toBe(false);
    expect(await store.findApp(orgId, app.id)).toMatchObject({ title: app.title });
  });

  it('round-trips every domain field', async () => {
    const app = await newApp();
    const domain = newDomain(app.id, 'fields.example.com', {
      status: 'verifying',
      isPrimary: true,
      verifiedAt: at(1),
      verifyingSince: at(2),
      lastCheckedAt: at(3),
      nextCheckAt: at(4),
      verificationErrors: [{ code: 'txt_not_found', message: 'No TXT' }],
      routingObserved: ['CNAME x.example.net'],
      failureStreak: 2,
      serving: {
        checkedAt: at(5),
        ok: false,
        edges: [
          { address: '10.0.0.5:443', ok: true, certificateSha256: 'ab'.repeat(32), status: 200, error: null },
          { address: '10.0.0.6:443', ok: false, certificateSha256: null, status: null, error: 'refused' },
        ],
      },
    });
    await store.insertDomain(domain);
    expect(await store.findDomainById(domain.id)).toEqual(domain);
  });

  it('records a serving report without touching anything else, and clears it', async () => {
    const app = await newApp();
    const domain = newDomain(app.id, 'served.example.com', { status: 'active', verifiedAt: at(1) });
    await store.insertDomain(domain);
    const serving = {
      checkedAt: at(9),
      ok: true,
      edges: [
        {
          address: '[2001:db8::5]:443',
          ok: true,
          certificateSha256: 'cd'.repeat(32),
          status: 301,
          error: null,
        },
      ],
    };
    expect(await store.recordServing(domain.id, serving)).toEqual({ ...domain, serving });
    expect(await store.findDomainById(domain.id)).toEqual({ ...domain, serving });
    expect(await store.recordServing(domain.id, null)).toEqual(domain);
    expect(await store.recordServing(newId('dom'), serving)).toBeUndefined();
  });

  it('lists the domains in given statuses that have no job under a key prefix, by id, a page at a time', async () => {
    const app = await newApp();
    const ids = ['dom_jobless0001', 'dom_jobless0002', 'dom_jobless0003', 'dom_jobless0004'];
    await store.insertDomain(newDomain(app.id, 'a.jobless.example', { id: ids[0], status: 'active' }));
    await store.insertDomain(newDomain(app.id, 'b.jobless.example', { id: ids[1], status: 'active' }));
    await store.insertDomain(newDomain(app.id, 'c.jobless.example', { id: ids[2], status: 'verified' }));
    await store.insertDomain(newDomain(app.id, 'd.jobless.example', { id: ids[3], status: 'active' }));
    const job = (key: string) => ({ kind: 'test:recurring', key, payload: {}, orgId, runAt: t0 });
    await store.enqueueJob(job(`test:recurring:${ids[1]}`), newId('job'), t0);
    // Another prefix's job does not count.
    await store.enqueueJob(job(`test:other:${ids[0]}`), newId('job'), t0);
    const missing = async (after: string, limit: number) =>
      (await store.listDomainsWithoutJob(['active'], 'test:recurring:', after, limit)).filter((d) =>
        ids.includes(d.id),
      );
    expect(await missing('dom_jobless', 10)).toEqual([
      { id: ids[0], orgId },
      { id: ids[3], orgId },
    ]);
    expect(await missing(ids[0] as string, 10)).toEqual([{ id: ids[3], orgId }]);
    expect(await store.listDomainsWithoutJob([], 'test:recurring:', '', 10)).toEqual([]);
    await store.deleteJob(`test:recurring:${ids[1]}`);
    await store.deleteJob(`test:other:${ids[0]}`);
  });

  it('announces serving changes after commit, never on rollback, to every subscriber', async () => {
    const seen: string[] = [];
    const unsubscribe = store.subscribeServingChanges((hostname) => seen.push(hostname));
    // PostgreSQL's LISTEN connection opens on the first subscription; wait until it hears.
    await waitUntil(async () => {
      await store.publishServingChange('probe.example.com');
      return seen.includes('probe.example.com');
    });
    seen.length = 0;
    await expect(
      store.transaction(async (tx) => {
        await tx.publishServingChange('rolled-back.example.com');
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    let seenInside: string[] = [];
    await store.transaction(async (tx) => {
      await tx.publishServingChange('committed.example.com');
      seenInside = [...seen];
    });
    await waitUntil(async () => seen.includes('committed.example.com'));
    expect(seenInside).not.toContain('committed.example.com');
    expect(seen).not.toContain('rolled-back.example.com');
    unsubscribe();
  });

  describe('jobs', () => {
    const job = (key: string, runAt = t0) => ({
      kind: 'test:job',
      key,
      payload: { key },
      orgId: null,
      runAt,
    });

    it('claims due jobs only, earliest first, and counts the attempt', async () => {
      await store.enqueueJob(job('due-2', at(2)), newId('job'), t0);
      await store.enqueueJob(job('due-1', at(1)), newId('job'), t0);
      await store.enqueueJob(job('future', at(3600)), newId('job'), t0);
      const claimed = await store.claimJobs('w1', ['test:job'], 10, at(10));
      expect(claimed.map((j) => j.key)).toEqual(['due-1', 'due-2']);
      expect(claimed.every((j) => j.attempts === 1 && j.lockedBy === 'w1')).toBe(true);
      expect(await store.claimJobs('w2', ['test:job'], 10, at(10))).toEqual([]);
      for (const j of claimed) expect(await store.completeJob(j, 'w1')).toBe(true);
      await store.deleteJob('future');
    });

    it('never leases one job to two concurrent claimers', async () => {
      const keys = Array.from({ length: 60 }, (_, i) => `many-${i}`);
      for (const key of keys) await store.enqueueJob(job(key), newId('job'), t0);
      const claims = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.claimJobs(`w${i}`, ['test:job'], 9, at(1))),
      );
      const all = claims.flat().map((j) => j.key);
      expect(new Set(all).size).toBe(all.length);
      expect(all.length).toBe(60);
      for (const [i, jobs] of claims.entries()) for (const j of jobs) await store.completeJob(j, `w${i}`);
      expect(await store.countJobs('test:job')).toBe(0);
    });

    it('lets only the lease holder complete or reschedule', async () => {
      await store.enqueueJob(job('held'), newId('job'), t0);
      const [claimed] = await store.claimJobs('owner', ['test:job'], 1, at(1));
      if (!claimed) throw new Error('nothing claimed');
      expect(await store.completeJob(claimed, 'intruder')).toBe(false);
      expect(await store.rescheduleJob(claimed, 'intruder', at(5))).toBe(false);
      expect(await store.rescheduleJob(claimed, 'owner', at(60), 'temporary failure')).toBe(true);
      expect(await store.findJob('held')).toMatchObject({
        runAt: at(60),
        lockedBy: null,
        lastError: 'temporary failure',
      });
      await store.deleteJob('held');
    });

    it('keeps a job that was enqueued again while it ran', async () => {
      await store.enqueueJob(job('rerun'), newId('job'), t0);
      const [running] = await store.claimJobs('w1', ['test:job'], 1, at(1));
      if (!running) throw new Error('nothing claimed');
      await store.enqueueJob({ ...job('rerun', at(2)), payload: { again: true } }, newId('job'), at(1));
      expect(await store.completeJob(running, 'w1')).toBe(true);
      const kept = await store.findJob('rerun');
      expect(kept).toMatchObject({ lockedBy: null, runAt: at(2), payload: { again: true } });
      const [next] = await store.claimJobs('w2', ['test:job'], 1, at(3));
      expect(next?.key).toBe('rerun');
      if (next) expect(await store.completeJob(next, 'w2')).toBe(true);
      expect(await store.findJob('rerun')).toBeUndefined();
    });

    it('frees expired leases and a stopping worker’s leases', async () => {
      await store.enqueueJob(job('stale', t0), newId('job'), t0);
      await store.enqueueJob(job('mine', at(1)), newId('job'), t0);
      await store.claimJobs('dead-worker', ['test:job'], 1, at(1));
      await store.claimJobs('live-worker', ['test:job'], 1, at(100));
      expect(await store.releaseExpiredLeases(at(50))).toBe(1);
      expect((await store.claimJobs('w3', ['test:job'], 5, at(101))).map((j) => j.key)).toEqual(['stale']);
      expect(await store.releaseLeases('live-worker')).toBe(1);
      expect(await store.releaseLeases('w3')).toBe(1);
      const again = await store.claimJobs('w4', ['test:job'], 5, at(102));
      expect(again.map((j) => j.key).sort()).toEqual(['mine', 'stale']);
      // Claimed by dead-worker, w3 and now w4.
      expect(again.find((j) => j.key === 'stale')?.attempts).toBe(3);
      for (const j of again) await store.completeJob(j, 'w4');
    });

    it('claims only the kinds asked for', async () => {
      await store.enqueueJob({ ...job('other-kind'), kind: 'other:job' }, newId('job'), t0);
      expect(await store.claimJobs('w1', ['test:job'], 5, at(1))).toEqual([]);
      const [other] = await store.claimJobs('w1', ['other:job'], 5, at(1));
      expect(other?.key).toBe('other-kind');
      if (other) await store.completeJob(other, 'w1');
    });
  });
});

// SQLite only: PostgreSQL's planner picks by table statistics, so a plan on a test-sized table says
// nothing about a large one; SQLite's choice of index does not depend on the rows.
describe('store lists on sqlite', () => {
  it('read pages in index order, with no sort step, for every list endpoint', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portico-plans-'));
    const prepare = vi.spyOn(BetterSqlite3.prototype, 'prepare');
    const store = await createStore({ dataDir: dir });
    try {
      const page = { limit: 50, offset: 0 };
      await store.listApps('org_x', page);
      await store.listDomains('app_x', page);
      await store.listWebhooks('org_x', page);
      await store.listDeliveries('wh_x', page);
      const pageQueries = [...new Set(prepare.mock.calls.map(([text]) => text))].filter((text) =>
        /order by "created_at" (asc|desc), "id"/.test(text),
      );
      prepare.mockRestore();
      expect(pageQueries).toHaveLength(4);
      const raw = new BetterSqlite3(path.join(dir, 'portico.db'), { readonly: true });
      // Unbound values: the plan depends on the SQL and the schema, not on the values.
      const planOf = (text: string) => {
        const nulls = (text.match(/\?/g) ?? []).map(() => null);
        const rows = raw.prepare(`explain query plan ${text}`).all(...nulls) as { detail: string }[];
        return rows.map((row) => row.detail).join('; ');
      };
      const plans = pageQueries.map((text) => ({ text, plan: planOf(text) }));
      raw.close();
      for (const { text, plan } of plans) {
        expect(plan, text).toMatch(/USING (COVERING )?INDEX/);
        expect(plan, text).not.toMatch(/TEMP B-TREE/);
      }
    } finally {
      prepare.mockRestore();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('migrationsApplied', () => {
  /** A store and a way to run SQL beside it on the same database, as an operator's psql would. */
  const opened = [
    {
      name: 'sqlite',
      async open() {
        const dir = mkdtempSync(path.join(tmpdir(), 'portico-migrations-'));
        const store = await createStore({ dataDir: dir });
        const raw = new BetterSqlite3(path.join(dir, 'portico.db'));
        return {
          store,
          exec: async (text: string) => void raw.exec(text),
          close: async () => {
            raw.close();
            await store.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
    },
    ...(process.env.DATABASE_URL
      ? [
          {
            name: 'postgres',
            async open() {
              const url = process.env.DATABASE_URL as string;
              const schema = `t_${randomAlphanumeric(12)}`;
              const store = await createStore({
                databaseUrl: url,
                dataDir: tmpdir(),
                postgresSchema: schema,
              });
              const client = new pg.Client({ connectionString: url });
              await client.connect();
              await client.query(`SET search_path = ${schema}`);
              return {
                store,
                exec: async (text: string) => void (await client.query(text)),
                close: async () => {
                  await store.close();
                  await client.query(`DROP SCHEMA ${schema} CASCADE`);
                  await client.end();
                },
              };
            },
          },
        ]
      : []),
  ];

  it.each(opened)('says false while a migration is missing from the record, on $name', async ({ open }) => {
    const { store, exec, close } = await open();
    try {
      expect(await store.migrationsApplied()).toBe(true);
      await exec(`DELETE FROM kysely_migration WHERE name = '0007-list-order-indexes'`);
      expect(await store.migrationsApplied()).toBe(false);
    } finally {
      await close();
    }
  });
});
