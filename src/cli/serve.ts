import { parseArgs } from 'node:util';
import { type Config, loadConfig, type Role, readLogFormat } from '../config.js';
import { ConfigError } from '../config-error.js';
import { formatServer } from '../dns/wire-transport.js';
import { systemClock } from '../domain/clock.js';
import { EDGE_WORKER_FLAG } from '../edge-workers/messages.js';
import { startEdgeWorkers } from '../edge-workers/primary.js';
import { createLogger, type LogFormat, type Logger } from '../logger.js';
import { Metrics } from '../ops/metrics.js';
import {
  openSnapshotReader,
  type RoleDeps,
  type Stop,
  startApiRole,
  startDnsRole,
  startEdgeRole,
  startSnapshotWriter,
  startWorkerRole,
} from '../roles.js';
import { createServices } from '../services.js';
import type { SnapshotState } from '../snapshot/snapshot-reader.js';
import { deferStore } from '../store/deferred-store.js';
import type { Store } from '../store/index.js';
import { holderId, nodeId } from '../worker/lease-holder.js';
import {
  createFirstKey,
  describeError,
  describeStore,
  ensureBootstrapKey,
  keysCreateCommand,
  openStore,
} from './operator.js';

/**
 * `portico serve`: the roles PORTICO_ROLES (or --roles) names, in this process, until SIGTERM;
 * the edge in PORTICO_EDGE_WORKERS processes of its own when that is more than 1.
 */
export async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { roles: { type: 'string' }, [EDGE_WORKER_FLAG]: { type: 'boolean' } },
  });
  // One of the edge workers this command forks (edge-workers/): it runs the edge alone.
  if (values[EDGE_WORKER_FLAG]) {
    return (await import('../edge-workers/edge-worker.js')).runEdgeWorker(process.env);
  }
  const env = values.roles ? { ...process.env, PORTICO_ROLES: values.roles } : process.env;
  // The format first: every line from here on, a failure to start included, is written in it. A
  // wrong PORTICO_LOG_FORMAT itself can only be a plain line (src/main.ts).
  const format = readLogFormat(env);
  const stopRequested = stopSignal();
  let logger: Logger | undefined;
  const running: Running = {};
  try {
    const config = loadConfig(env);
    logger = createLogger(config.logLevel, format);
    await start(config, env, logger, announcer(logger, format), running);
  } catch (error) {
    await stopAll(running).catch(() => undefined);
    return reportStartFailure(format, error, logger?.isLevelEnabled('debug') ?? false);
  }
  logger.info({ signal: await stopRequested }, 'shutting down');
  await stopAll(running);
  return 0;
}

/**
 * Listened for before anything starts: a SIGTERM that arrives while the roles start (a deploy
 * rolling back at once) waits for them to be up, then stops them cleanly, instead of killing the
 * process halfway through.
 */
function stopSignal(): Promise<string> {
  return new Promise<string>((resolve) => {
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
}

/** What has started, to be stopped. */
interface Running {
  store?: Store;
  edge?: Stop;
  api?: Stop;
  worker?: Stop;
  dns?: Stop;
}

/**
 * In the order docs/operations.md gives: traffic stops first, then work, then the store. The dns
 * role stops after the worker: an ACME order the worker is finishing may be waiting for the CA to
 * read its challenge from this very server.
 */
async function stopAll(running: Running): Promise<void> {
  await running.edge?.();
  await running.api?.();
  await running.worker?.();
  await running.dns?.();
  await running.store?.close();
}

/**
 * A start-up line: a sentence for people (text), or an info record with the same sentence as its
 * `msg` and its facts as fields (json). Shown whatever PORTICO_LOG_LEVEL says, as these lines always
 * were: supervisors and scripts wait for "listening on", and the one-time key must not be lost to a
 * quiet level.
 */
type Announce = (text: string, fields?: Record<string, unknown>, msg?: string) => void;

function announcer(logger: Logger, format: LogFormat): Announce {
  const log = logger.child({}, { level: 'info' });
  return (text, fields = {}, msg = text) => {
    if (format === 'text') process.stdout.write(`${text}\n`);
    else log.info(fields, msg);
  };
}

/**
 * Starts the roles: the listeners first, so a port taken fails the start before any work is
 * taken or any key made; then the worker; then, on an empty store, the first API key.
 */
async function start(
  config: Config,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  announce: Announce,
  running: Running,
): Promise<void> {
  const has = (role: Role) => config.roles.includes(role);
  refuseSharedPorts(config);
  const storeName = describeStore(config);
  let reachable = true;
  try {
    running.store = await openStore(config);
  } catch (error) {
    // An edge alone on PostgreSQL starts anyway and serves from its snapshot until the store
    // answers (src/snapshot/); every other role needs the store to do anything at all, and a SQLite
    // file that cannot be opened will not open by itself later.
    if (!config.databaseUrl || config.roles.some((role) => role !== 'edge')) {
      throw new StartError(`could not open the store (${storeName}): ${describeError(error)}`);
    }
    reachable = false;
    logger.warn(
      { store: storeName, err: error },
      'store not reachable: the edge serves from its snapshot and keeps trying the store',
    );
    running.store = deferStore(() => openStore(config), error, {
      onOpen: () => logger.info({ store: storeName }, 'store reachable again'),
    }).store;
  }
  const store = running.store;
  if (reachable) await ensureBootstrapKey(store, config);
  const metrics = new Metrics(store, systemClock);
  // This machine and data directory in the names of lease holders (made on first use), so a
  // restarted node frees at once what its killed predecessor held (worker/lease-holder.ts). The
  // API's inline checks and the worker hold leases; the edge holds none.
  const node = has('api') || has('worker') ? nodeId(config.dataDir) : undefined;
  // The dns role reads the store only: a dns-only node builds no services (no issuer, no secret box,
  // so it needs no PORTICO_ENCRYPTION_KEY).
  const services =
    has('api') || has('worker') || has('edge')
      ? await createServices({
          config,
          store,
          clock: systemClock,
          logger,
          metrics,
          // Only the API and the worker order certificates: an edge-only node serves what is stored
          // and builds no issuer (nor loads an ACME client it would never call).
          issuer: has('api') || has('worker') ? undefined : null,
          leaseHolder: has('api') && node ? holderId('api', node) : undefined,
        })
      : undefined;
  const deps: RoleDeps | undefined = services && {
    config,
    store,
    services,
    clock: systemClock,
    logger,
    nodeId: node,
  };

  let edgeHttpsPort = config.edgeHttpsPort;
  let edgeState: (() => SnapshotState | undefined) | undefined;
  if (has('edge') && services) {
    const edgeLogger = logger.child({ role: 'edge' });
    // One edge in this process, or that many workers of their own sharing its ports (edge-workers/).
    const snapshot =
      config.edgeWorkers > 1 ? undefined : openSnapshotReader(config, services.box, edgeLogger);
    const edge = await listening<{
      httpPort: number;
      httpsPort: number;
      close(): Promise<void>;
      snapshotState?(): SnapshotState | undefined;
    }>(config, 'edge', () =>
      config.edgeWorkers > 1
        ? startEdgeWorkers({ count: config.edgeWorkers, env, store, metrics, logger: edgeLogger })
        : startEdgeRole(config, store, services, edgeLogger, snapshot),
    );
    edgeState = snapshot ? () => snapshot.state() : edge.snapshotState;
    // This process holds the node's change feed: it alone writes the node's snapshot, once per
    // change. On PostgreSQL only: SQLite is a file in this same data directory, which cannot become
    // unreachable while the snapshot beside it stays readable, so a snapshot would only cost memory.
    const writer = config.databaseUrl
      ? startSnapshotWriter(config, store, services.box, edgeLogger)
      : undefined;
    running.edge = async () => {
      await edge.close();
      await writer?.stop();
    };
    edgeHttpsPort = edge.httpsPort;
    const http = `http://${config.host}:${edge.httpPort}`;
    const https = `https://${config.host}:${edge.httpsPort}`;
    announce(`Portico edge listening on ${http} and ${https}`, { http, https });
  }
  if (has('api') && deps) {
    // With the edge in this process, domains' `url` shows the port it really serves HTTPS on.
    const api = await listening(config, 'api', () => startApiRole(deps, edgeHttpsPort, edgeState));
    running.api = api.stop;
    const url = `http://${config.host}:${api.port}`;
    announce(`Portico API listening on ${url} (docs: /docs, store: ${storeName})`, {
      url,
      docs: `${url}/docs`,
      store: storeName,
    });
  }
  if (has('dns')) {
    const dns = await listening(config, 'dns', () =>
      startDnsRole({ config, store, clock: systemClock, logger, metrics }),
    );
    running.dns = dns.close;
    const address = formatServer({ ...config.dnsListen, port: dns.port });
    const zone = config.acmeDnsZone;
    announce(`Portico dns listening on ${address} (UDP and TCP) for ${zone}`, { address, zone });
  }
  if (has('worker') && deps) {
    const worker = startWorkerRole(deps);
    running.worker = worker.stop;
    announce(`Portico worker started (${worker.id}, issuer: ${config.tlsIssuer}, store: ${storeName})`, {
      worker: worker.id,
      issuer: config.tlsIssuer,
      store: storeName,
    });
  }
  // Only a process serving the API mints the first key: it prints it beside the address to use it
  // with, where an operator looks, rather than in the log of whichever worker or edge came up first.
  if (has('api')) await announceKey(store, config, announce);
}

/**
 * The first key, or how to make one. A key is shown only when it is made, so a start that shows
 * none says how to get one, with the data directory (or database) of this server: an operator
 * whose first start failed, or who lost the key, is not left guessing.
 */
async function announceKey(store: Store, config: Config, announce: Announce): Promise<void> {
  const key = await createFirstKey(store);
  if (key) {
    const intro = 'No API key existed, so one was created for organization "default".';
    // The one secret Portico ever writes to its output, deliberately: it exists nowhere else (the
    // store keeps its hash), and an operator reading the log of a first start needs it. In JSON it
    // is a field of its own, named so that no one mistakes it for an ordinary log field; `key` is
    // redacted (src/logger.ts), so it could not be that.
    announce(
      `\n${intro} It is shown only this once:\n\n  ${key}\n`,
      { first_api_key: key, organization: 'default' },
      `${intro} It is shown only this once, in first_api_key.`,
    );
  } else if (!config.bootstrapKey) {
    const command = keysCreateCommand(config);
    announce(`API keys are shown only when they are made. To make one: ${command}`, { command });
  }
}

/** A start-up failure whose message says all an operator needs: printed without a stack trace. */
class StartError extends Error {}

/** The ports this process binds, by setting, when they are fixed (0 picks a free one). */
function fixedPorts(config: Config): [setting: string, port: number][] {
  const ports: [string, number][] = [];
  if (config.roles.includes('api')) ports.push(['PORTICO_API_PORT', config.apiPort]);
  if (config.roles.includes('edge')) {
    ports.push(
      ['PORTICO_EDGE_HTTP_PORT', config.edgeHttpPort],
      ['PORTICO_EDGE_HTTPS_PORT', config.edgeHttpsPort],
    );
  }
  // TCP shares port numbers with the API and the edge on the same address.
  if (config.roles.includes('dns') && config.dnsListen.host === config.host) {
    ports.push(['PORTICO_DNS_LISTEN', config.dnsListen.port]);
  }
  return ports.filter(([, port]) => port !== 0);
}

/** Two listeners of this process on one port: the second would fail as "in use" by Portico itself. */
function refuseSharedPorts(config: Config): void {
  const ports = fixedPorts(config);
  for (const [index, [setting, port]] of ports.entries()) {
    const other = ports.slice(index + 1).find(([, otherPort]) => otherPort === port);
    if (other) {
      throw new ConfigError(
        `${setting} and ${other[0]} are both ${port}: each listener needs a port of its own`,
      );
    }
  }
}

/**
 * Runs `listen`, turning what commonly goes wrong into a StartError that names the setting to
 * change. Node reports the port of a failed listen on the error; it tells the edge's two apart.
 */
async function listening<T>(
  config: Config,
  role: 'api' | 'edge' | 'dns',
  listen: () => Promise<T>,
): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    const { code, port } = error as NodeJS.ErrnoException & { port?: number };
    const setting =
      role === 'api'
        ? 'PORTICO_API_PORT'
        : role === 'dns'
          ? 'PORTICO_DNS_LISTEN'
          : port === config.edgeHttpPort
            ? 'PORTICO_EDGE_HTTP_PORT'
            : 'PORTICO_EDGE_HTTPS_PORT';
    const host = role === 'dns' ? config.dnsListen.host : config.host;
    const hostSetting = role === 'dns' ? 'PORTICO_DNS_LISTEN' : 'PORTICO_HOST';
    const where = `port ${port ?? '?'} (${setting}) on ${host}`;
    switch (code) {
      case 'EADDRINUSE':
        throw new StartError(
          `${where} is already in use, by another program or another Portico: stop it, or set ${setting} to a free port`,
        );
      case 'EACCES':
        throw new StartError(
          `not allowed to listen on ${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE; or set ${setting} to a port from 1024 up`,
        );
      case 'EADDRNOTAVAIL':
        throw new StartError(
          `cannot listen on ${host}: it is not an address of this machine; set ${hostSetting} to one that is (127.0.0.1, or 0.0.0.0 for all)`,
        );
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        throw new StartError(`PORTICO_HOST ${config.host} does not resolve to an address of this machine`);
      default:
        throw error;
    }
  }
}

/**
 * A failed start as one line on stderr, where a failure is looked for (stdout may be a log file):
 * `portico: …` (text), or one fatal record (json, so a collector parses it like every other line).
 * An error nobody foresaw keeps its stack, in the record (json) or below the line at
 * PORTICO_LOG_LEVEL=debug (text). Exit code 2 for a wrong setting, as for every other command, 1
 * otherwise.
 */
function reportStartFailure(format: LogFormat, error: unknown, debug: boolean): number {
  const foreseen = error instanceof StartError || error instanceof ConfigError;
  const message = foreseen ? error.message : `could not start: ${describeError(error)}`;
  if (format === 'json') {
    createLogger('info', 'json', process.stderr).fatal(foreseen ? {} : { err: error }, message);
  } else {
    process.stderr.write(`portico: ${message}\n`);
    if (!foreseen && debug && error instanceof Error) {
      process.stderr.write(`${error.stack}\n`);
    }
  }
  return error instanceof ConfigError ? 2 : 1;
}
