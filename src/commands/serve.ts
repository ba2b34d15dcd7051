import { parseArgs } from 'node:util';
import { loadConfig, type Role } from '../config.js';
import { systemClock } from '../domain/clock.js';
import { startEdgeRole } from '../edge/role.js';
import { createLogger } from '../logger.js';
import { Metrics } from '../ops/metrics.js';
import { createServices } from '../services.js';
import { Housekeeping } from '../worker/housekeeping.js';
import { holderId, nodeId } from '../worker/lease-holder.js';
import { Worker } from '../worker/runner.js';

import { ensureKeys, openStore } from './operator.js';

/** `portico serve`: the roles PORTICO_ROLES (or --roles) names, in this process, until SIGTERM. */
export async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { roles: { type: 'string' } } });
  const env = values.roles ? { ...process.env, PORTICO_ROLES: values.roles } : process.env;
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  // Listened for before anything starts: a SIGTERM that arrives while the roles start (a deploy
  // rolling back at once) waits for them to be up, then stops them cleanly, instead of killing the
  // process halfway through.
  const stopRequested = new Promise<string>((resolve) => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      process.once(signal, () => {
        resolve(signal);
        // A second one does not wait: start-up itself may be what hangs (a database not answering).
        process.once(signal, () => process.exit(code));
      });
    }
  });
  const store = await openStore(config);
  const has = (role: Role) => config.roles.includes(role);
  const stops: (() => Promise<void>)[] = [];

  // Only a process serving the API mints the first key: it prints it beside the address to use it
  // with, where an operator looks, rather than in the log of whichever worker or edge came up first.
  const firstKey = await ensureKeys(store, config, { createFirst: has('api') });
  const metrics = new Metrics(store, systemClock);
  const services = await createServices({ config, store, clock: systemClock, logger, metrics });

  // This machine and data directory in the names of lease holders, read once (made on first use).
  let nodeName: string | undefined;
  const node = () => {
    nodeName ??= nodeId(config.dataDir);
    return nodeName;
  };

  if (has('worker')) {
    const worker = new Worker({
      store,
      handlers: services.handlers,
      clock: systemClock,
      logger: logger.child({ role: 'worker' }),
      concurrency: config.workerConcurrency,
      orgConcurrency: config.workerOrgConcurrency,
      leaseSeconds: config.jobLeaseSeconds,
      nodeId: node(),
    });
    worker.start();
    stops.push(() => worker.stop());
    const housekeeping = new Housekeeping(store, systemClock, logger.child({ role: 'worker' }));
    housekeeping.start();
    stops.push(() => housekeeping.stop());
    console.log(
      `Portico worker started (${worker.id}, issuer: ${config.tlsIssuer}, store: ${store.dialect})`,
    );
  }

  if (has('api')) {
    // Loaded only with the API role: an edge- or worker-only process needs none of Fastify's routes,
    // schemas and docs, and starts faster and smaller without them.
    const { buildApi } = await import('../app.js');
    const api = await buildApi({
      config,
      store,
      clock: systemClock,
      logger,
      services,
      leaseHolder: holderId('api', node()),
    });
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

  logger.info({ signal: await stopRequested }, 'shutting down');
  for (const close of stops.reverse()) await close();
  await store.close();
  return 0;
}
