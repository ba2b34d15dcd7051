/** Operator commands: they use the server's configuration and store directly. */

import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Config, loadConfig } from '../config.js';
import { createApiKey, KEY_CACHE_SECONDS } from '../domain/api-keys.js';
import { systemClock } from '../domain/clock.js';
import { createStore, type Store, sqliteFileOf } from '../store/index.js';
import { renderTable } from './output.js';

/** The store the configuration names (SQLite in the data directory, or DATABASE_URL). */
export const openStore = (config: Config) =>
  createStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    sqliteSynchronous: config.sqliteSynchronous,
  });

/**
 * Which store the configuration names, for people: the SQLite file, or PostgreSQL's user, host,
 * port and database. Never the password (nor the query string, where a password may also be).
 */
export function describeStore(config: Pick<Config, 'databaseUrl' | 'dataDir'>): string {
  if (!config.databaseUrl) return `SQLite ${sqliteFileOf(config.dataDir)}`;
  try {
    const url = new URL(config.databaseUrl);
    url.password = '';
    url.search = '';
    url.hash = '';
    return `PostgreSQL ${url.href}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}

/**
 * An error as one line: its message, or for errors that carry none (node's AggregateError when
 * every address of a host refused the connection) what they wrap.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.message) return error.message;
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join('; ');
  }
  return ('code' in error && String(error.code)) || error.name;
}

/** An API key's command, as an operator copies it: with the data directory or database to use. */
export function keysCreateCommand(config: Pick<Config, 'databaseUrl' | 'dataDir'>): string {
  const command = 'npx portico keys create --org default';
  return config.databaseUrl
    ? `${command} (with this server's DATABASE_URL)`
    : `PORTICO_DATA_DIR=${config.dataDir} ${command}`;
}

/** The label of the key `PORTICO_BOOTSTRAP_KEY` makes. */
const BOOTSTRAP_KEY_NAME = 'bootstrap';

export async function migrate(): Promise<number> {
  const config = loadConfig();
  const store = await openOrExplain(config);
  if (!store) return 1;
  await store.close();
  console.log(`portico: migrations applied (${describeStore(config)})`);
  return 0;
}

/**
 * The store for an operator command, or undefined once the reason it cannot be had is printed: a
 * failure to open it is one line naming the store, not a stack trace. With `mustExist`, a SQLite
 * store that is not there is not created: an operator command run in the wrong directory would
 * otherwise make an empty store there and act on it (`keys list` listing nothing, `keys create`
 * printing a key no server knows). PostgreSQL is not held to that: a new database is migrated, so
 * `keys create` can be the first thing done with it, before any server starts.
 */
async function openOrExplain(config: Config, { mustExist = false } = {}): Promise<Store | undefined> {
  if (mustExist && !config.databaseUrl && !existsSync(sqliteFileOf(config.dataDir))) {
    console.error(
      `portico: there is no Portico store at ${sqliteFileOf(config.dataDir)}: run this where \`portico serve\` ` +
        'runs, with its PORTICO_DATA_DIR (default ./data) or DATABASE_URL; `portico serve` or `portico migrate` ' +
        'makes a new store',
    );
    return undefined;
  }
  try {
    return await openStore(config);
  } catch (error) {
    console.error(`portico: could not open the store (${describeStore(config)}): ${describeError(error)}`);
    return undefined;
  }
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
  const store = await openOrExplain(config, { mustExist: true });
  if (!store) return 1;
  // On stderr, so stdout stays the key (create) or the list (--json) that scripts read.
  console.error(`portico: store: ${describeStore(config)}`);
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

/** Makes `PORTICO_BOOTSTRAP_KEY` a key of organization `default`, when it is set. */
export async function ensureBootstrapKey(store: Store, config: Config): Promise<void> {
  if (!config.bootstrapKey) return;
  await createApiKey(store, systemClock, {
    orgName: 'default',
    scope: 'write',
    name: BOOTSTRAP_KEY_NAME,
    key: config.bootstrapKey,
  });
}

/**
 * On a store holding no key at all, creates one for organization `default` and returns it, to be
 * printed once, so a newcomer can call the API right after `npm start`. Called only once the
 * listeners are up: a start that fails (a port taken) must not leave a key made and never shown.
 */
export async function createFirstKey(store: Store): Promise<string | undefined> {
  if ((await store.countApiKeys()) > 0) return undefined;
  return (await createApiKey(store, systemClock, { orgName: 'default', scope: 'write', name: 'first' })).key;
}
