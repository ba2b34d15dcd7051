import { type Insertable, type Selectable, sql, type Updateable } from 'kysely';
import { writing } from '../errors.js';
import type { DomainsTable } from '../schema.js';
import type { Domain, DomainStatus, DomainStore, RoutingVia, ServingReport } from '../store.js';
import { listPage, type SqlContext, toCount } from './context.js';
import { prepared } from './prepared.js';

const toDomain = (row: Selectable<DomainsTable>): Domain => ({
  id: row.id,
  appId: row.app_id,
  orgId: row.org_id,
  name: row.name,
  status: row.status as DomainStatus,
  isPrimary: row.is_primary === 1,
  verificationToken: row.verification_token,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  verifiedAt: row.verified_at,
  verifyingSince: row.verifying_since,
  lastCheckedAt: row.last_checked_at,
  nextCheckAt: row.next_check_at,
  verificationErrors: JSON.parse(row.verification_errors),
  routingObserved: JSON.parse(row.routing_observed),
  routingVia: row.routing_via as RoutingVia | null,
  failureStreak: row.failure_streak,
  serving: row.serving === null ? null : (JSON.parse(row.serving) as ServingReport),
});

// The queries every add-domain runs, prepared once (see prepared.ts).
const insertDomain = prepared((db, row: Insertable<DomainsTable>) =>
  db.insertInto('domains').values({
    id: row.id,
    app_id: row.app_id,
    org_id: row.org_id,
    name: row.name,
    status: row.status,
    is_primary: row.is_primary,
    verification_token: row.verification_token,
    created_at: row.created_at,
    updated_at: row.updated_at,
    verified_at: row.verified_at,
    verifying_since: row.verifying_since,
    last_checked_at: row.last_checked_at,
    next_check_at: row.next_check_at,
    verification_errors: row.verification_errors,
    routing_observed: row.routing_observed,
    routing_via: row.routing_via,
    failure_streak: row.failure_streak,
    serving: row.serving,
  }),
);
const domainInOrg = prepared((db, { orgId, name }: { orgId: string; name: string }) =>
  db.selectFrom('domains').selectAll().where('org_id', '=', orgId).where('name', '=', name),
);
const adjustCount = prepared((db, { orgId, delta }: { orgId: string; delta: number }) =>
  db
    .updateTable('organizations')
    .set((eb) => ({ domain_count: eb('domain_count', '+', delta) }))
    .where('id', '=', orgId),
);
/** Adds `delta` unless the count would pass the limit: `most` is the limit minus `delta`. */
const addWithinLimit = prepared(
  (db, { orgId, delta, most }: { orgId: string; delta: number; most: number }) =>
    db
      .updateTable('organizations')
      .set((eb) => ({ domain_count: eb('domain_count', '+', delta) }))
      .where('id', '=', orgId)
      .where('domain_count', '<=', most),
);
// The edge's route lookups, on every name it has not cached: claims in the statuses the edge
// serves. The statuses are part of the query's shape (constants, not parameters), so there is one
// prepared query per list of statuses; callers pass one list (domain/serving.ts).
const domainInStatus = perStatusList((statuses) =>
  prepared((db, { name }: { name: string }) =>
    db.selectFrom('domains').selectAll().where('name', '=', name).where('status', 'in', statuses),
  ),
);
const primaryInStatus = perStatusList((statuses) =>
  prepared((db, { appId }: { appId: string }) =>
    db
      .selectFrom('domains')
      .selectAll()
      .where('app_id', '=', appId)
      .where('is_primary', '=', 1)
      .where('status', 'in', statuses),
  ),
);

function perStatusList<Q>(
  make: (statuses: readonly DomainStatus[]) => Q,
): (statuses: readonly DomainStatus[]) => Q {
  const made = new Map<string, Q>();
  return (statuses) => {
    const key = statuses.join(',');
    let query = made.get(key);
    if (query === undefined) {
      query = make(statuses);
      made.set(key, query);
    }
    return query;
  };
}

/**
 * The first key of Portico's advisory locks on domain names ('port' in ASCII), which keeps them
 * apart from other advisory locks on the same database (another application's, kept under other
 * keys); the name's hash is the second. Two names that share a hash, or one name in two schemas
 * (two test suites), only wait for each other: that costs time, not correctness.
 */
const NAME_LOCK_SPACE = 0x706f7274;

export function domainQueries({ db, caps }: SqlContext): DomainStore {
  return {
    async insertDomain(domain) {
      await writing(() =>
        insertDomain(db, {
          id: domain.id,
          app_id: domain.appId,
          org_id: domain.orgId,
          name: domain.name,
          status: domain.status,
          is_primary: domain.isPrimary ? 1 : 0,
          verification_token: domain.verificationToken,
          created_at: domain.createdAt,
          updated_at: domain.updatedAt,
          verified_at: domain.verifiedAt,
          verifying_since: domain.verifyingSince,
          last_checked_at: domain.lastCheckedAt,
          next_check_at: domain.nextCheckAt,
          verification_errors: JSON.stringify(domain.verificationErrors),
          routing_observed: JSON.stringify(domain.routingObserved),
          routing_via: domain.routingVia,
          failure_streak: domain.failureStreak,
          serving: domain.serving === null ? null : JSON.stringify(domain.serving),
        }),
      );
    },
    async findDomain(appId, name) {
      const row = await db
        .selectFrom('domains')
        .selectAll()
        .where('app_id', '=', appId)
        .where('name', '=', name)
        .executeTakeFirst();
      return row && toDomain(row);
    },
    async findDomainById(id) {
      const row = await db.selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toDomain(row);
    },
    async findDomainInOrg(orgId, name) {
      const [row] = (await domainInOrg(db, { orgId, name })).rows;
      return row && toDomain(row);
    },
    async findClaims(name) {
      const rows = await db
        .selectFrom('domains')
        .selectAll()
        .where('name', '=', name)
        .orderBy('created_at')
        .execute();
      return rows.map(toDomain);
    },
    listDomains(appId, page) {
      return listPage(db.selectFrom('domains').where('app_id', '=', appId), page, toDomain);
    },
    async lockDomainName(name) {
      // SQLite runs one write transaction at a time already.
      if (!caps.advisoryLocks) return;
      await sql`select pg_advisory_xact_lock(${sql.lit(NAME_LOCK_SPACE)}, hashtext(${name}))`.execute(db);
    },
    async findDomainInStatus(name, statuses) {
      const [row] = (await domainInStatus(statuses)(db, { name })).rows;
      return row && toDomain(row);
    },
    async findPrimaryInStatus(appId, statuses) {
      const [row] = (await primaryInStatus(statuses)(db, { appId })).rows;
      return row && toDomain(row);
    },
    async listDomainsInStatus(statuses, afterName, limit) {
      const rows = await db
        .selectFrom('domains')
        .select(['name', 'app_id', 'is_primary'])
        .where('status', 'in', statuses)
        .where('name', '>', afterName)
        .orderBy('name')
        .limit(limit)
        .execute();
      return rows.map((row) => ({ name: row.name, appId: row.app_id, isPrimary: row.is_primary === 1 }));
    },
    async adjustDomainCount(orgId, delta, limit) {
      const result =
        limit !== undefined && delta > 0
          ? await addWithinLimit(db, { orgId, delta, most: limit - delta })
          : await adjustCount(db, { orgId, delta });
      return Number(result.numAffectedRows) > 0;
    },
    async countDomainsByStatus() {
      const rows = await db
        .selectFrom('domains')
        .select((eb) => ['status', eb.fn.countAll().as('n')])
        .groupBy('status')
        .execute();
      return rows.map((row) => ({ status: row.status, count: toCount(row.n as number | string) }));
    },
    async listDomainNames(appId) {
      const rows = await db.selectFrom('domains').select('name').where('app_id', '=', appId).execute();
      return rows.map((row) => row.name);
    },
    async updateDomain(id, patch) {
      const values: Updateable<DomainsTable> = { updated_at: patch.updatedAt };
      if (patch.status !== undefined) values.status = patch.status;
      if (patch.isPrimary !== undefined) values.is_primary = patch.isPrimary ? 1 : 0;
      if (patch.verifiedAt !== undefined) values.verified_at = patch.verifiedAt;
      if (patch.verifyingSince !== undefined) values.verifying_since = patch.verifyingSince;
      if (patch.lastCheckedAt !== undefined) values.last_checked_at = patch.lastCheckedAt;
      if (patch.nextCheckAt !== undefined) values.next_check_at = patch.nextCheckAt;
      if (patch.verificationErrors !== undefined)
        values.verification_errors = JSON.stringify(patch.verificationErrors);
      if (patch.routingObserved !== undefined)
        values.routing_observed = JSON.stringify(patch.routingObserved);
      if (patch.routingVia !== undefined) values.routing_via = patch.routingVia;
      if (patch.failureStreak !== undefined) values.failure_streak = patch.failureStreak;
      const row = await writing(() =>
        db.updateTable('domains').set(values).where('id', '=', id).returningAll().executeTakeFirst(),
      );
      return row && toDomain(row);
    },
    async recordServing(id, serving) {
      const row = await writing(() =>
        db
          .updateTable('domains')
          .set({ serving: serving === null ? null : JSON.stringify(serving) })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirst(),
      );
      return row && toDomain(row);
    },
    async listDomainsWithoutJob(statuses, jobKeyPrefix, afterId, limit) {
      if (statuses.length === 0) return [];
      const rows = await db
        .selectFrom('domains')
        .select(['id', 'org_id'])
        .where('status', 'in', [...statuses])
        .where('id', '>', afterId)
        // `||` concatenates on both SQLite and PostgreSQL; jobs.key is unique, so this is an index probe per domain.
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('jobs')
                .select(sql`1`.as('one'))
                .where('jobs.key', '=', sql<string>`${jobKeyPrefix} || domains.id`),
            ),
          ),
        )
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map((row) => ({ id: row.id, orgId: row.org_id }));
    },
    async clearPrimary(appId, exceptId, now) {
      await db
        .updateTable('domains')
        .set({ is_primary: 0, updated_at: now })
        .where('app_id', '=', appId)
        .where('id', '!=', exceptId)
        .where('is_primary', '=', 1)
        .execute();
    },
    async deleteDomain(id) {
      const result = await db.deleteFrom('domains').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}
