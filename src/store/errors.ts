import { UniqueViolation } from './store.js';

/**
 * SQLite names the columns of a failed unique constraint, not the index; this maps them to the
 * index names PostgreSQL reports, so callers see one vocabulary on both stores.
 */
const SQLITE_UNIQUE_COLUMNS: Record<string, string> = {
  'organizations.name': 'organizations_name_key',
  'apps.slug': 'apps_slug_key',
  'domains.id': 'domains_pkey',
  'domains.org_id, domains.name': 'domains_org_name_key',
  'domains.app_id': 'domains_one_primary_per_app',
  'domains.name': 'domains_one_live_claim',
  'jobs.key': 'jobs_key_key',
};

/** Turns a driver's unique-violation error into `UniqueViolation`; anything else is rethrown as is. */
export function translateDriverError(error: unknown): never {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (code === '23505') {
      throw new UniqueViolation(String((error as { constraint?: unknown }).constraint ?? 'unknown'));
    }
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      const columns = error.message.replace(/^UNIQUE constraint failed: /, '');
      throw new UniqueViolation(SQLITE_UNIQUE_COLUMNS[columns] ?? columns);
    }
  }
  throw error;
}

/** Runs a write and translates unique violations. */
export async function writing<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    translateDriverError(error);
  }
}
