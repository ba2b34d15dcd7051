import { parseArgs } from 'node:util';
import { buildApi } from './app.js';
import { type Config, ConfigError, loadConfig, type Role } from './config.js';
import { createApiKey } from './domain/api-keys.js';
import { systemClock } from './domain/clock.js';
import { startEdgeRole } from './edge/role.js';
import { createLogger } from './logger.js';
import { createServices } from './services.js';
import { createStore, type Store } from './store/index.js';
import { Worker } from './worker/runner.js';

const USAGE = `Usage: portico <command> [options]

Commands:
  serve [--roles api,worker,edge]      run Portico (every role by default)
  migrate                              apply database migrations and exit
  keys create --org NAME [--read-only] [--name LABEL]
                                       create an API key and print it (shown once)

Configuration comes from the environment (PORTICO_*, DATABASE_URL); see README.md.`;

/** The CLI entry; answers the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'migrate':
        return await migrate();
      case 'keys':
        return await keys(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        console.error(`portico: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (
      error instanceof ConfigError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      console.error(`portico: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

const openStore = (config: Config) =>
  createStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    sqliteSynchronous: config.sqliteSynchronous,
  });

async function migrate(): Promise<number> {
  const config = loadConfig();
  const store = await openStore(config);
  await store.close();
  console.log(`portico: migrations applied (${store.dialect})`);
  return 0;
}

async function keys(argv: string[]): Promise<number> {
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
 * On a store with no key at all, creates one for organization `default` and prints it once, so a
 * newcomer can call the API right after `npm start`. `PORTICO_BOOTSTRAP_KEY` is ensured first.
 */
async function ensureKeys(store: Store, config: Config): Promise<string | undefined> {
  if (config.bootstrapKey) {
    await createApiKey(store, systemClock, {
      orgName: 'default',
      scope: 'write',
      name: 'bootstrap',
      key: config.bootstrapKey,
    });
  }
  if ((await store.countApiKeys()) > 0) return undefined;
  return (await createApiKey(store, systemClock, { orgName: 'default', scope: 'write', name: 'first' })).key;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { roles: { type: 'string' } } });
  const env = values.roles ? { ...process.env, PORTICO_ROLES: values.roles } : process.env;
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const store = await openStore(config);
  const has = (role: Role) => config.roles.includes(role);
  const stops: (() => Promise<void>)[] = [];

  const firstKey = await ensureKeys(store, config);
  const services = await createServices({ config, store, clock: systemClock, logger });

  if (has('worker')) {
    const worker = new Worker({
      store,
      handlers: services.handlers,
      clock: systemClock,
      logger: logger.child({ role: 'worker' }),
      concurrency: config.workerConcurrency,
      leaseSeconds: config.jobLeaseSeconds,
    });
    worker.start();
    stops.push(() => worker.stop());
    logger.info({ workerId: worker.id, issuer: config.tlsIssuer }, 'worker started');
  }

  if (has('api')) {
    const api = await buildApi({ config, store, clock: systemClock, logger, services });
    await api.listen({ host: config.host, port: config.apiPort });
    stops.push(() => api.close());
    const address = api.server.address();
    const port = typeof address === 'object' && address ? address.port : config.apiPort;
    console.log(
      `Portico API listening on http://${config.host}:${port} (docs: /docs, store: ${store.dialect})`,
    );
  }
  if (has('edge')) {
    const edge = await startEdgeRole(config, store, services, logger.child({ role: 'edge' }));
    stops.push(() => edge.close());
    console.log(
      `Portico edge listening on http://${config.host}:${edge.httpPort} and https://${config.host}:${edge.httpsPort}`,
    );
  }
  if (firstKey) {
    console.log(
      `\nNo API key existed, so one was created for organization "default". It is shown only this once:\n\n  ${firstKey}\n`,
    );
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  for (const close of stops.reverse()) await close();
  await store.close();
  return 0;
}
