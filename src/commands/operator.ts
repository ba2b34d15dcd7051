/** Operator commands: they use the server's configuration and store directly. */
import { parseArgs } from 'node:util';
import { renderTable } from '../cli/output.js';
import { type Config, loadConfig } from '../config.js';
import { createApiKey, KEY_CACHE_SECONDS } from '../domain/api-keys.js';
import { systemClock } from '../domain/clock.js';
import { createStore, type Store } from '../store/index.js';

/** The store the configuration names (SQLite in the data directory, or DATABASE_URL). */
export const openStore = (config: Config) =>
  createStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    sqliteSynchronous: config.sqliteSynchronous,
  });

/** The label of the key `PORTICO_BOOTSTRAP_KEY` makes. */
const BOOTSTRAP_KEY_NAME = 'bootstrap';

export async function migrate(): Promise<number> {
  const config = loadConfig();
  const store = await openStore(config);
  await store.close();
  console.log(`portico: migrations applied (${store.dialect})`);
  return 0;
}

const KEYS_USAGE = `Usage: portico keys create --org NAME [--read-only] [--name LABEL]
       portico keys list [--org NAME] [--json]
       portico keys revoke KEY_ID`;

/** `portico keys create|list|revoke`: API keys, straight in the store (no API key needed to make the first). */
export async function keys(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      org: { type: 'string' },
      'read-only': { type: 'boolean' },
      name: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [action, keyId] = positionals;
  const valid =
    (action === 'create' && values.org !== undefined && positionals.length === 1) ||
    (action === 'list' && positionals.length === 1) ||
    (action === 'revoke' && keyId !== undefined && positionals.length === 2);
  if (!valid) {
    console.error(KEYS_USAGE);
    return 2;
  }
  const config = loadConfig();
  const store = await openStore(config);
  try {
    if (action === 'create')
      return await createKey(store, values.org ?? '', values['read-only'], values.name);
    if (action === 'list') return await listKeys(store, values.org, values.json);
    return await revokeKey(store, keyId ?? '');
  } finally {
    await store.close();
  }
}

async function createKey(store: Store, org: string, readOnly?: boolean, name?: string): Promise<number> {
  const created = await createApiKey(store, systemClock, {
    orgName: org,
    scope: readOnly ? 'read' : 'write',
    name,
  });
  console.log(created.key);
  console.error(
    `portico: ${created.scope} key ${created.keyId} for organization ${org} (${created.orgId}); it is shown only now`,
  );
  return 0;
}

/** Ids, organizations, scopes and labels: what an operator needs to pick a key to revoke; never a secret. */
async function listKeys(store: Store, org?: string, json?: boolean): Promise<number> {
  const found = await store.listApiKeys(org);
  if (json) {
    console.log(
      JSON.stringify(
        found.map(({ id, orgName, scope, name, createdAt }) => ({
          id,
          organization: orgName,
          scope,
          name,
          created_at: createdAt,
        })),
      ),
    );
  } else if (found.length === 0) {
    console.error(
      org === undefined ? 'portico: no API keys' : `portico: organization ${org} has no API keys`,
    );
  } else {
    const rows = found.map((key) => [key.id, key.orgName, key.scope, key.name, key.createdAt]);
    process.stdout.write(renderTable(['ID', 'ORGANIZATION', 'SCOPE', 'NAME', 'CREATED'], rows));
  }
  return 0;
}

async function revokeKey(store: Store, keyId: string): Promise<number> {
  const revoked = await store.deleteApiKey(keyId);
  if (!revoked) {
    console.error(`portico: no API key ${keyId} (\`portico keys list\` shows them)`);
    return 1;
  }
  console.error(
    `portico: revoked ${revoked.scope} key ${revoked.id} of organization ${revoked.orgName}; ` +
      `API nodes that used it in the last ${KEY_CACHE_SECONDS} s accept it until their memory of it expires`,
  );
  if (revoked.name === BOOTSTRAP_KEY_NAME) {
    console.error(
      'portico: it was PORTICO_BOOTSTRAP_KEY: unset that variable, or the key is made again at the next start',
    );
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
      name: BOOTSTRAP_KEY_NAME,
      key: config.bootstrapKey,
    });
  }
  if (!createFirst || (await store.countApiKeys()) > 0) return undefined;
  return (await createApiKey(store, systemClock, { orgName: 'default', scope: 'write', name: 'first' })).key;
}
