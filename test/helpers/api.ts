import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { type Logger, pino } from 'pino';
import { buildApi } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createApiKey } from '../../src/domain/api-keys.js';
import { type Clock, systemClock } from '../../src/domain/clock.js';
import { Metrics } from '../../src/ops/metrics.js';
import { createServices } from '../../src/services.js';
import type { ApiKeyScope, Store } from '../../src/store/store.js';
import type { Backend } from './stores.js';

export interface TestApi {
  app: FastifyInstance;
  config: Config;
  /** The store the API runs on. */
  store: Store;
  /** A new API key for organization `org` (created if missing). */
  keyFor(org: string, scope?: ApiKeyScope): Promise<string>;
  /** A JSON request as a client sends it; `body` undefined sends no body. */
  call(key: string | undefined, method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** What `serve` wires besides the API, for the suites that need it; by default none of it. */
export interface ApiWiring {
  /** Where the API and its services log (by default nowhere). */
  logger?: Logger;
  /** Metrics kept as `serve` keeps them, so that /metrics answers. */
  metrics?: boolean;
  /** The certificate issuer PORTICO_TLS_ISSUER names, as `serve` has it. */
  issuer?: boolean;
}

/**
 * The API on `store`, wired as `serve` wires it (src/services.ts) but, unless `wiring` asks for
 * them, with no certificate issuer, metrics or log, and DNS pointed at a closed loopback port (a
 * verify answers at once, unverified), driven through `inject()`: real routing, validation and
 * serialization, no socket. Its data directory is its own, removed by `close()`.
 */
export async function openApi(
  store: Store,
  env: Record<string, string> = {},
  clock: Clock = systemClock,
  wiring: ApiWiring = {},
): Promise<TestApi> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-api-'));
  const config = loadConfig({
    PORTICO_APPS_DOMAIN: 'apps.portico.test',
    PORTICO_DATA_DIR: dataDir,
    PORTICO_DNS_SERVERS: '127.0.0.1:9',
    PORTICO_DNS_TIMEOUT_MS: '200',
    PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
    // Serving probes ask edges, which most tests do not run: off unless a test turns them on.
    PORTICO_PROBE_INTERVAL_SECONDS: '0',
    ...env,
  });
  const services = await createServices({
    config,
    store,
    clock,
    logger: wiring.logger ?? pino({ level: 'silent' }),
    ...(wiring.metrics ? { metrics: new Metrics(store, clock) } : {}),
    // Left out, createServices builds the issuer the configuration names.
    ...(wiring.issuer ? {} : { issuer: null }),
  });
  const app = await buildApi({ config, store, clock, services, logger: wiring.logger });
  const api = wrapApi(app, config, store, clock);
  return {
    ...api,
    close: async () => {
      await api.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A fresh store of `backend` and the API on it, as `openApi` builds it; `close()` closes both. What
 * most API suites open before their tests.
 */
export async function openApiOn(
  backend: Backend,
  env: Record<string, string> = {},
  clock: Clock = systemClock,
  wiring: ApiWiring = {},
): Promise<TestApi> {
  const store = await backend.open();
  try {
    const api = await openApi(store, env, clock, wiring);
    return {
      ...api,
      close: async () => {
        await api.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/** The test client around an API that is already built. */
export function wrapApi(app: FastifyInstance, config: Config, store: Store, clock: Clock): TestApi {
  return {
    app,
    config,
    store,
    keyFor: async (org, scope = 'write') => (await createApiKey(store, clock, { orgName: org, scope })).key,
    call: (key, method, url, body) =>
      app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      }),
    close: () => app.close(),
  };
}

let slugCounter = 0;
/** Creates an app and answers its id. */
export async function createTestApp(
  api: TestApi,
  key: string,
  slug = `app-${process.pid}-${++slugCounter}`,
): Promise<string> {
  const response = await api.call(key, 'POST', '/v1/apps', {
    slug,
    meta: { title: `App ${slug}` },
    origin_url: 'https://origin.example.com',
  });
  if (response.statusCode !== 200)
    throw new Error(`creating app ${slug}: ${response.statusCode} ${response.body}`);
  return response.json().app_id;
}
