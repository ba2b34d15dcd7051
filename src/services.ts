import type { Logger } from 'pino';
import { type CertificateEvent, CertificateService } from './acme/certificates.js';
import { createIssuer } from './acme/create-issuer.js';
import type { CertIssuer } from './acme/issuer.js';
import { toServingBody } from './api/presenters.js';
import type { Config } from './config.js';
import { checkDelegation } from './dns/checks.js';
import type { Resolvers } from './dns/resolver.js';
import { createResolvers } from './dns/resolvers.js';
import { AppService } from './domain/apps.js';
import type { Clock } from './domain/clock.js';
import { DomainService } from './domain/domains.js';
import type { DomainEvent } from './domain/lifecycle.js';
import { ROUTING_PROOF_KEY_PURPOSE, RoutingProver } from './domain/routing-proof.js';
import { servingChanges } from './domain/serving.js';
import { type VerificationHooks, VerificationService } from './domain/verification.js';
import { WebhookService } from './events/webhooks.js';
import type { Metrics } from './ops/metrics.js';
import { type ServingEvent, ServingProbes } from './probes/serving-probes.js';
import { openSecretBox, type SecretBox } from './secrets/secret-box.js';
import type { Domain, Store } from './store/store.js';
import { certificateHandlers } from './worker/jobs/certificates.js';
import { domainCheckHandlers } from './worker/jobs/domain-check.js';
import { domainProbeHandlers } from './worker/jobs/domain-probe.js';
import { webhookHandlers } from './worker/jobs/webhooks.js';
import type { JobHandler } from './worker/runner.js';

/**
 * The composition root: every service of every role, wired to each other once, here, and nowhere
 * else. No rules live here: what a change serves is `domain/serving.ts`, status changes are
 * `domain/lifecycle.ts`. `cli/serve.ts` builds them for the roles (`roles.ts`); tests build them
 * with a manual clock and loopback DNS.
 */
export interface Services {
  /** Apps, for the API. */
  apps: AppService;
  /** Customers' domains, for the API: checks run inline on `verify`, what they serve announced. */
  domains: DomainService;
  verification: VerificationService;
  webhooks: WebhookService;
  metrics?: Metrics;
  /** Serving probes of active domains (PORTICO_PROBE_INTERVAL_SECONDS, PORTICO_EDGE_PROBE_ADDRESSES). */
  probes: ServingProbes;
  /** Undefined when PORTICO_TLS_ISSUER=none. */
  certificates?: CertificateService;
  issuer?: CertIssuer;
  /** Seals what must be read back but never stored in plain text (keys, secrets, kept answers). */
  box: SecretBox;
  /** Every job kind a worker of this process runs. */
  handlers: JobHandler[];
}

export interface ServiceDeps {
  config: Config;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Defaults to resolvers over PORTICO_DNS_SERVERS. */
  resolvers?: Resolvers;
  /** Defaults to the issuer PORTICO_TLS_ISSUER names; `null` for none. */
  issuer?: CertIssuer | null;
  /** Counters to move; none when absent (tests). */
  metrics?: Metrics;
  /**
   * Holds the job of a check the API runs inline (worker/lease-holder.ts): `portico serve` names
   * its node, so a restarted node frees what a killed one held. Defaults to `api:{pid}`.
   */
  leaseHolder?: string;
  /** Also told of every status change (tests observe through it); webhooks get them regardless. */
  onEvent?: (
    event: DomainEvent | CertificateEvent | ServingEvent,
    subject: { hostname: string; domain?: Domain },
  ) => void;
}

/** A status change: `domain.verified`, `certificate.issued`, … with what it is about. */
export type EventSink = (
  tx: Store,
  event: DomainEvent | CertificateEvent | ServingEvent,
  subject: { hostname: string; domain?: Domain },
  now: Date,
  data?: Record<string, unknown>,
) => Promise<void>;

export async function createServices(deps: ServiceDeps): Promise<Services> {
  const { config, store, clock, logger } = deps;
  // Seals private keys and webhook secrets; several nodes must share it (PORTICO_ENCRYPTION_KEY).
  const box = openSecretBox(config);
  const resolvers = deps.resolvers ?? createResolvers(config);
  // CAA is read as the CA reads it: through a recursive resolver, as routing is.
  const issuer =
    deps.issuer === undefined
      ? await createIssuer(config, store, box, clock, logger, resolvers.routing)
      : (deps.issuer ?? undefined);
  const { metrics } = deps;
  const webhooks = new WebhookService(store, box, config, clock, (outcome) =>
    metrics?.webhookDeliveries.inc({ outcome }),
  );
  const probes = new ServingProbes(store, config, clock, {
    onProbe: (outcome) => metrics?.probes.inc({ outcome }),
    onEvent: (tx, domain, event, now) =>
      events(tx, event, { hostname: domain.name, domain }, now, {
        serving: domain.serving && toServingBody(domain.serving),
      }),
  });
  // Events about customers' domains go to their organization's webhooks; a certificate of an app's
  // default hostname belongs to the platform and is only logged.
  const events: EventSink = async (tx, event, subject, now, data) => {
    logger.info({ event, hostname: subject.hostname, domainId: subject.domain?.id }, 'event');
    deps.onEvent?.(event, subject);
    if (event.startsWith('certificate.'))
      metrics?.certificates.inc({ event: event.slice('certificate.'.length) });
    // Probes start with the domain's service, in the transaction that activated it.
    if (event === 'domain.active' && subject.domain) await probes.onActive(tx, subject.domain, now);
    if (subject.domain) await webhooks.record(tx, event, subject.domain, now, data);
  };
  const certificates = issuer
    ? new CertificateService(store, issuer, box, config, clock, {
        onEvent: (tx, subject, event, now, data) => events(tx, event, subject, now, data),
        onRevocation: (outcome, detail) => {
          metrics?.certificateRevocations.inc({ outcome });
          const fields = { ...detail, outcome };
          if (outcome === 'given_up')
            logger.warn(fields, 'certificate revocation given up; its key is deleted');
          else if (outcome === 'retrying') logger.info(fields, 'certificate revocation failed; will retry');
          else logger.info(fields, 'certificate revocation done; its key is deleted');
        },
        onRenewalInfo: (detail) => {
          if (detail.error !== undefined)
            logger.warn(detail, 'ACME renewal information not available; asking again later');
          else logger.debug(detail, 'ACME renewal information');
        },
        delegationInPlace: async (record, signal) =>
          (await checkDelegation(resolvers.routing, { name: record.name, target: record.value, signal })).ok,
      })
    : undefined;

  // What a change of an app or a domain does to what is served: domain/serving.ts.
  const serving = servingChanges(config.appsDomain, certificates);
  const verificationHooks: VerificationHooks = {
    onChecked: (outcome) => metrics?.checks.inc({ outcome }),
    onReadyForCertificate: async (tx, domain, now) => certificates?.requestForDomain(tx, domain, now),
    onEvent: async (tx, domain, event, now) => {
      await events(tx, event, { hostname: domain.name, domain }, now);
      await serving.domainEvent(tx, domain, event);
    },
  };
  const verification = new VerificationService(
    store,
    resolvers,
    config,
    clock,
    verificationHooks,
    new RoutingProver(resolvers.routing, box.deriveKey(ROUTING_PROOF_KEY_PURPOSE), {
      allowPrivateAddresses: config.allowPrivateOrigins,
    }),
  );
  const apps = new AppService(store, config, clock, serving);
  const domains = new DomainService(store, config, clock, {
    verification,
    hooks: serving,
    holder: deps.leaseHolder,
  });

  return {
    apps,
    domains,
    verification,
    webhooks,
    metrics,
    probes,
    certificates,
    issuer,
    box,
    handlers: [
      ...domainCheckHandlers(verification),
      ...domainProbeHandlers(probes),
      ...(certificates
        ? certificateHandlers(certificates, config.tlsIssuer === 'acme' ? config.acmeCas.length : 1)
        : []),
      ...webhookHandlers(webhooks),
    ],
  };
}
