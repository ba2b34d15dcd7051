import type { Selectable, Updateable } from 'kysely';
import { writing } from '../errors.js';
import type { AppsTable } from '../schema.js';
import type { App, AppStore } from '../store.js';
import { listPage, type SqlContext } from './context.js';
import { prepared } from './prepared.js';

const toApp = (row: Selectable<AppsTable>): App => ({
  id: row.id,
  orgId: row.org_id,
  slug: row.slug,
  title: row.title,
  description: row.description,
  originUrl: row.origin_url,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

// Every request about an app or its domains reads the app first: prepared once (see prepared.ts).
type AppKey = { orgId: string; appId: string };
const appByOrgAndId = prepared((db, { orgId, appId }: AppKey) =>
  db.selectFrom('apps').selectAll().where('org_id', '=', orgId).where('id', '=', appId),
);
const appByOrgAndIdForUpdate = prepared((db, { orgId, appId }: AppKey) =>
  db.selectFrom('apps').selectAll().where('org_id', '=', orgId).where('id', '=', appId).forUpdate(),
);
// The edge's route lookups, on every name it has not cached.
const appBySlug = prepared((db, { slug }: { slug: string }) =>
  db.selectFrom('apps').selectAll().where('slug', '=', slug),
);
const appById = prepared((db, { appId }: { appId: string }) =>
  db.selectFrom('apps').selectAll().where('id', '=', appId),
);

const adjustAppCount = prepared((db, { orgId, delta }: { orgId: string; delta: number }) =>
  db
    .updateTable('organizations')
    .set((eb) => ({ app_count: eb('app_count', '+', delta) }))
    .where('id', '=', orgId),
);
/** Adds `delta` unless the count would pass the limit: `most` is the limit minus `delta`. */
const addAppsWithinLimit = prepared(
  (db, { orgId, delta, most }: { orgId: string; delta: number; most: number }) =>
    db
      .updateTable('organizations')
      .set((eb) => ({ app_count: eb('app_count', '+', delta) }))
      .where('id', '=', orgId)
      .where('app_count', '<=', most),
);

export function appQueries({ db, caps }: SqlContext): AppStore {
  // SQLite has no row locks: its writers are serialized instead.
  const forUpdate = caps.rowLocks ? appByOrgAndIdForUpdate : appByOrgAndId;

  return {
    async insertApp(app) {
      await writing(() =>
        db
          .insertInto('apps')
          .values({
            id: app.id,
            org_id: app.orgId,
            slug: app.slug,
            title: app.title,
            description: app.description,
            origin_url: app.originUrl,
            created_at: app.createdAt,
            updated_at: app.updatedAt,
          })
          .execute(),
      );
    },
    async findApp(orgId, appId) {
      const [row] = (await appByOrgAndId(db, { orgId, appId })).rows;
      return row && toApp(row);
    },
    async findAppForUpdate(orgId, appId) {
      const [row] = (await forUpdate(db, { orgId, appId })).rows;
      return row && toApp(row);
    },
    async findAppBySlug(slug) {
      const [row] = (await appBySlug(db, { slug })).rows;
      return row && toApp(row);
    },
    async findAppById(appId) {
      const [row] = (await appById(db, { appId })).rows;
      return row && toApp(row);
    },
    async listAllApps(afterId, limit) {
      const rows = await db
        .selectFrom('apps')
        .selectAll()
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(toApp);
    },
    listApps(orgId, page) {
      return listPage(db.selectFrom('apps').where('org_id', '=', orgId), page, toApp);
    },
    async updateApp(orgId, appId, patch) {
      const values: Updateable<AppsTable> = { updated_at: patch.updatedAt };
      if (patch.slug !== undefined) values.slug = patch.slug;
      if (patch.title !== undefined) values.title = patch.title;
      if (patch.description !== undefined) values.description = patch.description;
      if (patch.originUrl !== undefined) values.origin_url = patch.originUrl;
      const row = await writing(() =>
        db
          .updateTable('apps')
          .set(values)
          .where('org_id', '=', orgId)
          .where('id', '=', appId)
          .returningAll()
          .executeTakeFirst(),
      );
      return row && toApp(row);
    },
    async deleteApp(orgId, appId) {
      const result = await db
        .deleteFrom('apps')
        .where('org_id', '=', orgId)
        .where('id', '=', appId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async adjustAppCount(orgId, delta, limit) {
      const result =
        limit !== undefined && delta > 0
          ? await addAppsWithinLimit(db, { orgId, delta, most: limit - delta })
          : await adjustAppCount(db, { orgId, delta });
      return Number(result.numAffectedRows) > 0;
    },
    async holdSlug(slug, orgId, heldUntil, now) {
      await db
        .insertInto('slug_holds')
        .values({ slug, org_id: orgId, held_until: heldUntil, created_at: now })
        .onConflict((oc) =>
          oc.column('slug').doUpdateSet({ org_id: orgId, held_until: heldUntil, created_at: now }),
        )
        .execute();
    },
    async findSlugHold(slug, now) {
      const row = await db
        .selectFrom('slug_holds')
        .select(['org_id', 'held_until'])
        .where('slug', '=', slug)
        .where('held_until', '>', now)
        .executeTakeFirst();
      return row && { orgId: row.org_id, heldUntil: row.held_until };
    },
    async releaseSlugHold(slug) {
      await db.deleteFrom('slug_holds').where('slug', '=', slug).execute();
    },
  };
}
