/** Operator commands: they use the server's configuration and store directly. */
import { parseArgs } from 'node:util';
import { type Config, loadConfig } from '../config.js';
import { createApiKey } from '../domain/api-keys.js';
import { systemClock } from '../domain/clock.js';
import { createStore, type Store } from '../store/index.js';

/** The store the configuration names (SQLite in the data directory, or DATABASE_URL). */
export const openStore = (config: Config) =>
  createStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    sqliteSynchronous: config.sqliteSynchronous,
  });

export async function migrate(): Promise<number> {
  const config = loadConfig();
  const store = await openStore(config);
  await store.close();
  console.log(`portico: migrations applied (${store.dialect})`);
  return 0;
}

export async function keys(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { org: { type: 'string' }, 'read-only': { type: 'boolean' }, name: { type: 'string' } },
  });
  if (positionals[0] !== 'create' || !values.org) {
    console.error('Usage: portico keys create --org NAME [--read-only] [--name LABEL]');
    return 2;
  }
  const config = loadConfig();
  const store = await openStore(config);
  try {
    const created = await createApiKey(store, systemClock, {
      orgName: values.org,
      scope: values['read-only'] ? 'read' : 'write',
      name: values.name,
    });
    console.log(created.key);
    console.error(
      `portico: ${created.scope} key ${created.keyId} for organization ${values.org} (${created.orgId}); it is shown only now`,
    );
  } finally {
    await store.close();
  }
  return 0;
}

/**
 * Ensures `PORTICO_BOOTSTRAP_KEY`, then, with `createFirst` and a store holding no key at all,
 * creates one for organization `default` and returns it to be printed once, so a newcomer can call
 * the API right after `npm start`.
 */
export async function ensureKeys(
  store: Store,
  config: Config,
  { createFirst }: { createFirst: boolean },
): Promise<string | undefined> {
  if (config.bootstrapKey) {
    await createApiKey(store, systemClock, {
      orgName: 'default',
      scope: 'write',
      name: 'bootstrap',
      key: config.bootstrapKey,
    });
  }
  if (!createFirst || (await store.countApiKeys()) > 0) return undefined;
  return (await createApiKey(store, systemClock, { orgName: 'default', scope: 'write', name: 'first' })).key;
}
