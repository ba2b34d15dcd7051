import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { buildApi } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createApiKey } from '../../src/domain/api-keys.js';
import { type Clock, systemClock } from '../../src/domain/clock.js';
import { createServices } from '../../src/services.js';
import type { ApiKeyScope, Store } from '../../src/store/store.js';

export interface TestApi {
  app: FastifyInstance;
  config: Config;
  /** A new API key for organization `org` (created if missing). */
  keyFor(org: string, scope?: ApiKeyScope): Promise<string>;
  /** A JSON request as a client sends it; `body` undefined sends no body. */
  call(key: string | undefined, method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * The API on `store`, wired as `serve` wires it (src/services.ts) but with no certificate issuer
 * and DNS pointed at a closed loopback port (a verify answers at once, unverified), driven through
 * `inject()`: real routing, validation and serialization, no socket.
 */
export async function openApi(
  store: Store,
  env: Record<string, string> = {},
  clock: Clock = systemClock,
): Promise<TestApi> {
  const config = loadConfig({
    PORTICO_APPS_DOMAIN: 'apps.portico.test',
    PORTICO_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'portico-api-')),
    PORTICO_DNS_SERVERS: '127.0.0.1:9',
    PORTICO_DNS_TIMEOUT_MS: '200',
    PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
    ...env,
  });
  const services = await createServices({
    config,
    store,
    clock,
    logger: pino({ level: 'silent' }),
    issuer: null,
  });
  return wrapApi(await buildApi({ config, store, clock, services }), config, store, clock);
}

/** The test client around an API that is already built. */
export function wrapApi(app: FastifyInstance, config: Config, store: Store, clock: Clock): TestApi {
  return {
    app,
    config,
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
