import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { CertificateReader } from '../../src/acme/certificate-reader.js';
import type { CertIssuer } from '../../src/acme/issuer.js';
import { buildApi } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { Metrics } from '../../src/ops/metrics.js';
import { createServices } from '../../src/services.js';
import type { Store } from '../../src/store/store.js';
import { Worker } from '../../src/worker/runner.js';
import { createTestApp, wrapApi } from './api.js';
import { ManualClock } from './clock.js';
import type { TestDnsServer } from './dns-server.js';

/**
 * Every part of issuance on one store: the API, verification and certificates wired as `serve`
 * wires them (src/services.ts), a worker running every job kind, the loopback DNS server, and a
 * clock the test moves. `env` picks the issuer (internal by default, or ACME against Pebble).
 */
export async function openCertificateRig(
  store: Store,
  dns: TestDnsServer,
  env: Record<string, string> = {},
  options: { issuer?: CertIssuer | null; workers?: number } = {},
) {
  const clock = new ManualClock(new Date().toISOString());
  const config = loadConfig({
    PORTICO_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'portico-certs-')),
    PORTICO_APPS_DOMAIN: 'apps.portico.test',
    PORTICO_DNS_SERVERS: dns.address,
    PORTICO_DNS_TIMEOUT_MS: '300',
    PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64'),
    // Serving probes ask edges, which most tests do not run: off unless a test turns them on.
    PORTICO_PROBE_INTERVAL_SECONDS: '0',
    ...env,
  });
  const events: { hostname: string; event: string }[] = [];
  const logger = pino({ level: 'silent' });
  const metrics = new Metrics(store, clock);
  const services = await createServices({
    metrics,
    config,
    store,
    clock,
    logger,
    issuer: options.issuer,
    onEvent: (event, subject) => {
      events.push({ hostname: subject.hostname, event });
    },
  });
  const api = wrapApi(await buildApi({ config, store, clock, services }), config, store, clock);
  const workers = Array.from(
    { length: options.workers ?? 1 },
    () =>
      new Worker({ store, handlers: services.handlers, clock, logger, concurrency: 8, leaseSeconds: 600 }),
  );
  const key = await api.keyFor('cert-org');
  const appId = await createTestApp(api, key);

  /**
   * Adds a domain, creates its records (routing to `cnameTarget`, which resolves to `address`),
   * verifies it; on the rig's app, or on `owner`'s (another organization's key and app).
   */
  const addVerified = async (name: string, address = '127.0.0.1', owner = { key, appId }) => {
    const added = (
      await api.call(owner.key, 'POST', `/v1/apps/${owner.appId}/domains`, { domain: name })
    ).json();
    dns.add(`_mixpeek-verify.${name}`, 'TXT', `mixpeek-site-verification=${added.verification_token}`);
    dns.set(name, 'CNAME', config.cnameTarget);
    dns.set(config.cnameTarget, 'A', address);
    const verified = (
      await api.call(owner.key, 'POST', `/v1/apps/${owner.appId}/domains/${name}/verify`)
    ).json();
    if (verified.status !== 'verified')
      throw new Error(`${name} did not verify: ${JSON.stringify(verified)}`);
    return verified;
  };
  const read = async (name: string, owner = { key, appId }) =>
    (await api.call(owner.key, 'GET', `/v1/apps/${owner.appId}/domains/${name}`)).json();
  /** Runs every due job on every worker, concurrently, until none is due. */
  const drain = () => Promise.all(workers.map((worker) => worker.drain()));
  /** What an edge serves for a name: the stored certificates, through the reader `serve`'s edge uses. */
  const reader = new CertificateReader(store, services.box, config.appsDomain);
  return { clock, config, services, api, key, appId, events, addVerified, read, drain, reader };
}
