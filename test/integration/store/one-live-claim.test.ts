import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, randomAlphanumeric } from '../../../src/domain/ids.js';
import { isLive } from '../../../src/domain/lifecycle.js';
import { createStore } from '../../../src/store/index.js';
import { migrationProvider } from '../../../src/store/migrations/index.js';
import { openPostgres } from '../../../src/store/postgres.js';
import type { Database } from '../../../src/store/schema.js';
import { openSqlite } from '../../../src/store/sqlite.js';
import { type Domain, type DomainStatus, type Store, UniqueViolation } from '../../../src/store/store.js';
import { createTestApp } from '../../helpers/api.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';
import { openVerificationRig } from '../../helpers/verification.js';

type Rig = Awaited<ReturnType<typeof openVerificationRig>>;

const ROUNDS = 20;

/**
 * "Exactly one live claim per name" (docs/security.md, threat 2) under concurrency: two
 * organizations whose tokens are both in DNS call verify at the same moment, each through its own
 * node (two stores on one database, each with its own API and worker). Whichever proof commits
 * last wins; the other claim must end `moved`, never both live (before the fix, PostgreSQL left
 * both live in most rounds and the edge then served either tenant).
 */
describe.each(backends)('one live claim per name under concurrent verifies on $name', (backend) => {
  let stores: [Store, Store];
  let dns: TestDnsServer;
  let rigs: [Rig, Rig];
  const callers: { rig: Rig; key: string; appId: string }[] = [];

  beforeAll(async () => {
    stores = await backend.openPair();
    dns = await startDnsServer();
    rigs = [await openVerificationRig(stores[0], dns), await openVerificationRig(stores[1], dns)];
    for (const [index, rig] of rigs.entries()) {
      const key = await rig.api.keyFor(`racer-${index}`);
      callers.push({ rig, key, appId: await createTestApp(rig.api, key) });
    }
  });
  afterAll(async () => {
    for (const rig of rigs ?? []) await rig.api.close();
    await dns?.close();
    // On PostgreSQL the first store drops the schema, so the second closes first.
    if (stores && stores[1] !== stores[0]) await stores[1].close();
    await stores?.[0].close();
  });

  /** Every claim on `name` by status, and which organizations' claims are live. */
  const claimsOn = async (name: string) => {
    const claims = await stores[0].findClaims(name);
    return {
      statuses: claims.map((claim) => claim.status).sort(),
      live: claims.filter((claim) => isLive(claim.status)),
    };
  };

  it(`${ROUNDS} rounds of two organizations verifying one name at once leave one live claim, the other moved`, async () => {
    const broken: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const name = `race${round}.handover-${backend.name}.com`;
      const added = [];
      for (const { rig, key, appId } of callers) {
        const response = await rig.api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: name });
        expect(response.statusCode).toBe(200);
        added.push(response.json());
      }
      // Both organizations' tokens are in the customer's DNS: each one's proof holds.
      for (const domain of added) {
        dns.add(`_mixpeek-verify.${name}`, 'TXT', `mixpeek-site-verification=${domain.verification_token}`);
      }
      dns.set(name, 'CNAME', added[0].cname_target);

      const responses = await Promise.all(
        callers.map(({ rig, key, appId }) =>
          rig.api.call(key, 'POST', `/v1/apps/${appId}/domains/${name}/verify`),
        ),
      );
      expect(responses.map((response) => response.statusCode)).toEqual([200, 200]);
      const afterVerify = await claimsOn(name);

      // The regular re-check of every live claim, on both nodes.
      for (const rig of rigs) {
        rig.clock.advance(rig.config.reverifyIntervalSeconds);
        await rig.worker.drain();
      }
      const afterRecheck = await claimsOn(name);

      for (const [when, state] of [
        ['after verify', afterVerify],
        ['after re-check', afterRecheck],
      ] as const) {
        const expected = state.live.length === 1 && state.statuses.join() === 'moved,verified';
        if (!expected) broken.push(`round ${round} ${when}: ${state.statuses.join(', ')}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe.each(backends)('the store itself refuses a second live claim on $name', (backend) => {
  let store: Store;
  const t0 = '2026-01-01T00:00:00.000Z';

  beforeAll(async () => {
    store = await backend.open();
  });
  afterAll(async () => {
    await store?.close();
  });

  /** A claim by a new organization (each on an app of its own), as the API would add it. */
  const claim = async (name: string, status: DomainStatus): Promise<Domain> => {
    const org = await store.ensureOrganization(`org-${randomAlphanumeric(8)}`, newId('org'), t0);
    const appId = newId('app');
    const slug = `s-${randomAlphanumeric(10).toLowerCase()}`;
    await store.insertApp({
      id: appId,
      orgId: org.id,
      slug,
      title: slug,
      description: null,
      originUrl: null,
      createdAt: t0,
      updatedAt: t0,
    });
    const domain: Domain = {
      id: newId('dom'),
      appId,
      orgId: org.id,
      name,
      status,
      isPrimary: false,
      verificationToken: randomAlphanumeric(20),
      createdAt: t0,
      updatedAt: t0,
      verifiedAt: isLive(status) ? t0 : null,
      verifyingSince: null,
      lastCheckedAt: null,
      nextCheckAt: null,
      verificationErrors: [],
      routingObserved: [],
      routingVia: null,
      failureStreak: 0,
      serving: null,
    };
    await store.insertDomain(domain);
    return domain;
  };
  const refused = new UniqueViolation('domains_one_live_claim');

  it('beside a live claim: others may wait in any other status, none may become live until it leaves', async () => {
    const name = 'shared.one-live.com';
    const holder = await claim(name, 'active');
    const waiting = await Promise.all(
      (['pending', 'verifying', 'failed', 'moved'] as const).map((status) => claim(name, status)),
    );
    await expect(claim(name, 'verified')).rejects.toEqual(refused);
    await expect(claim(name, 'active')).rejects.toEqual(refused);
    const rival = waiting[1] as Domain;
    await expect(store.updateDomain(rival.id, { status: 'verified', updatedAt: t0 })).rejects.toEqual(
      refused,
    );
    await expect(store.updateDomain(rival.id, { status: 'active', updatedAt: t0 })).rejects.toEqual(refused);
    // A live claim may go from verified to active and back to itself: only a second one is refused.
    expect((await store.updateDomain(holder.id, { status: 'verified', updatedAt: t0 }))?.status).toBe(
      'verified',
    );

    await store.updateDomain(holder.id, { status: 'moved', updatedAt: t0 });
    expect((await store.updateDomain(rival.id, { status: 'verified', updatedAt: t0 }))?.status).toBe(
      'verified',
    );
    const live = (await store.findClaims(name)).filter((c) => isLive(c.status));
    expect(live.map((c) => c.id)).toEqual([rival.id]);
  });
});

/**
 * A database that already holds two live claims on a name (made by the race above before the
 * unique index existed): migrating keeps the most recent proof per name and moves the others.
 */
describe.each(backends)('migrating a database with two live claims on a name, on $name', (backend) => {
  const BEFORE = '0007-list-order-indexes';

  /** The database at BEFORE, the rows inserted with SQL, then opened as Portico opens it. */
  const migrateWith = async (insert: (db: Kysely<Database>) => Promise<void>): Promise<Store> => {
    if (backend.name === 'sqlite') {
      const dir = mkdtempSync(path.join(tmpdir(), 'portico-0008-'));
      const { db, close } = openSqlite({ file: path.join(dir, 'portico.db'), synchronous: 'NORMAL' });
      await new Migrator({ db, provider: migrationProvider }).migrateTo(BEFORE);
      await insert(db);
      await close();
      const store = await createStore({ dataDir: dir });
      const closeStore = store.close;
      store.close = async () => {
        await closeStore();
        rmSync(dir, { recursive: true, force: true });
      };
      return store;
    }
    const url = process.env.DATABASE_URL as string;
    const schema = `t_${randomAlphanumeric(12)}`;
    const { db } = await openPostgres({ url, schema });
    await new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema }).migrateTo(BEFORE);
    await insert(db);
    await db.destroy();
    const store = await createStore({ databaseUrl: url, dataDir: tmpdir(), postgresSchema: schema });
    const closeStore = store.close;
    store.close = async () => {
      await closeStore();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    };
    return store;
  };

  it('keeps the claim proven last (the id breaks a tie) and moves the others; other names are untouched', async () => {
    const t0 = '2026-01-01T00:00:00.000Z';
    const claims: [id: string, name: string, status: string, verifiedAt: string | null][] = [
      ['dom_a1', 'twice.example.com', 'active', '2026-01-01T00:00:01.000Z'],
      ['dom_a2', 'twice.example.com', 'active', '2026-01-01T00:00:02.000Z'],
      ['dom_a3', 'twice.example.com', 'verified', '2026-01-01T00:00:00.500Z'],
      ['dom_a4', 'twice.example.com', 'verifying', null],
      ['dom_b2', 'tied.example.com', 'verified', '2026-01-01T00:00:05.000Z'],
      ['dom_b1', 'tied.example.com', 'active', '2026-01-01T00:00:05.000Z'],
      ['dom_c1', 'alone.example.com', 'active', '2026-01-01T00:00:01.000Z'],
      ['dom_c2', 'alone.example.com', 'moved', '2026-01-01T00:00:09.000Z'],
    ];
    const store = await migrateWith(async (db) => {
      for (const [index, [id, name, status, verifiedAt]] of claims.entries()) {
        const org = `org_${index}`;
        await sql`insert into organizations (id, name, created_at) values (${org}, ${org}, ${t0})`.execute(
          db,
        );
        await sql`insert into apps (id, org_id, slug, title, created_at, updated_at)
          values (${`app_${index}`}, ${org}, ${`slug-${index}`}, 't', ${t0}, ${t0})`.execute(db);
        await sql`insert into domains (id, app_id, org_id, name, status, verification_token, created_at, updated_at, verified_at)
          values (${id}, ${`app_${index}`}, ${org}, ${name}, ${status}, 'token', ${t0}, ${t0}, ${verifiedAt})`.execute(
          db,
        );
      }
    });
    try {
      const statuses: Record<string, string> = {};
      for (const name of ['twice.example.com', 'tied.example.com', 'alone.example.com']) {
        for (const c of await store.findClaims(name)) statuses[c.id] = c.status;
      }
      expect(statuses).toEqual({
        dom_a1: 'moved',
        dom_a2: 'active',
        dom_a3: 'moved',
        dom_a4: 'verifying',
        dom_b1: 'moved',
        dom_b2: 'verified',
        dom_c1: 'active',
        dom_c2: 'moved',
      });
    } finally {
      await store.close();
    }
  });
});
