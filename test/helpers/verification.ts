import { pino } from 'pino';
import { buildApi } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createResolvers } from '../../src/dns/resolvers.js';
import { type DomainEvent, VerificationService } from '../../src/domain/verification.js';
import type { Domain, Store } from '../../src/store/store.js';
import { domainCheckHandlers } from '../../src/worker/jobs/domain-check.js';
import { Worker } from '../../src/worker/runner.js';
import { wrapApi } from './api.js';
import { ManualClock } from './clock.js';
import type { TestDnsServer } from './dns-server.js';

/**
 * The API and a worker on one store, asking the loopback DNS server, with a clock the test moves:
 * everything verification touches is real except time.
 */
export async function openVerificationRig(
  store: Store,
  dns: TestDnsServer,
  env: Record<string, string> = {},
) {
  const clock = new ManualClock();
  const config = loadConfig({
    PORTICO_APPS_DOMAIN: 'apps.portico.test',
    PORTICO_DNS_SERVERS: dns.address,
    PORTICO_DNS_TIMEOUT_MS: '200',
    ...env,
  });
  const events: { domain: string; orgId: string; event: DomainEvent }[] = [];
  const readyForCertificate: Domain[] = [];
  const verification = new VerificationService(store, createResolvers(config), config, clock, {
    onEvent: async (_tx, domain, event) => {
      events.push({ domain: domain.name, orgId: domain.orgId, event });
    },
    onReadyForCertificate: async (_tx, domain) => {
      readyForCertificate.push(domain);
    },
  });
  const app = await buildApi({ config, store, clock, verification });
  const worker = new Worker({
    store,
    handlers: domainCheckHandlers(verification),
    clock,
    logger: pino({ level: 'silent' }),
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
  return { clock, config, api, worker, verification, events, readyForCertificate, publish };
}
