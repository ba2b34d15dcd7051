import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { buildApi } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createServices } from '../../src/services.js';
import type { Store } from '../../src/store/store.js';
import { domainCheckHandlers } from '../../src/worker/jobs/domain-check.js';
import { Worker } from '../../src/worker/runner.js';
import { wrapApi } from './api.js';
import { ManualClock } from './clock.js';
import type { TestDnsServer } from './dns-server.js';

/**
 * The API and a worker on one store, asking the loopback DNS server, with a clock the test moves:
 * everything verification touches is real except time. The worker runs the DNS checks only, so a
 * certificate that verification asks for stays queued where the test can see it.
 */
export async function openVerificationRig(
  store: Store,
  dns: TestDnsServer,
  env: Record<string, string> = {},
) {
  const clock = new ManualClock();
  const config = loadConfig({
    PORTICO_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'portico-verify-')),
    PORTICO_APPS_DOMAIN: 'apps.portico.test',
    PORTICO_DNS_SERVERS: dns.address,
    PORTICO_DNS_TIMEOUT_MS: '200',
    PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    // Serving probes ask edges, which most tests do not run: off unless a test turns them on.
    PORTICO_PROBE_INTERVAL_SECONDS: '0',
    ...env,
  });
  const events: { domain: string; orgId?: string; event: string }[] = [];
  const logger = pino({ level: 'silent' });
  const services = await createServices({
    config,
    store,
    clock,
    logger,
    onEvent: (event, subject) => {
      events.push({ domain: subject.hostname, orgId: subject.domain?.orgId, event });
    },
  });
  const app = await buildApi({ config, store, clock, services });
  const worker = new Worker({
    store,
    handlers: domainCheckHandlers(services.verification),
    clock,
    logger,
    concurrency: 16,
    leaseSeconds: 60,
  });
  const api = wrapApi(app, config, store, clock);
  /** Creates the records a customer is told to create. */
  const publish = (domain: { domain: string; verification_token: string; cname_target: string }) => {
    dns.add(
      `_mixpeek-verify.${domain.domain}`,
      'TXT',
      `mixpeek-site-verification=${domain.verification_token}`,
    );
    dns.set(domain.domain, 'CNAME', domain.cname_target);
  };
  /** Whether a certificate was asked for (a `cert:issue` job is queued). */
  const certificateRequested = async (hostname: string) =>
    (await store.findJob(`cert:issue:${hostname}`)) !== undefined;
  return { clock, config, api, worker, services, events, certificateRequested, publish };
}
