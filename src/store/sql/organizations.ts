import type { OrganizationStore } from '../store.js';
import type { SqlContext } from './context.js';

export function organizationQueries({ db }: SqlContext): OrganizationStore {
  return {
    async ensureOrganization(name, id, now) {
      // Insert-or-ignore then read, so concurrent first requests agree on one row.
      await db
        .insertInto('organizations')
        .values({ id, name, created_at: now })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      const row = await db
        .selectFrom('organizations')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      return { id: row.id, name: row.name, createdAt: row.created_at };
    },
  };
}
