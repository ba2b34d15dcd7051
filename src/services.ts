import type { Logger } from 'pino';
import { type CertificateEvent, CertificateService } from './acme/certificates.js';
import { createIssuer } from './acme/create-issuer.js';
import type { CertIssuer } from './acme/issuer.js';
import type { Config } from './config.js';
import type { Resolvers } from './dns/resolver.js';
import { createResolvers } from './dns/resolvers.js';
import type { Clock } from './domain/clock.js';
import type { LifecycleHooks } from './domain/hooks.js';
import type { DomainEvent } from './domain/lifecycle.js';
import { type VerificationHooks, VerificationService } from './domain/verification.js';
import { WebhookService } from './events/webhooks.js';
import type { Metrics } from './ops/metrics.js';
import { openSecretBox, type SecretBox } from './secrets/secret-box.js';
import type { App, Domain, Store } from './store/store.js';
import { certificateHandlers } from './worker/jobs/certificates.js';
import { domainCheckHandlers } from './worker/jobs/domain-check.js';
import { webhookHandlers } from './worker/jobs/webhooks.js';
import type { JobHandler } from './worker/runner.js';

/**
 * The composition root: the services of every role, wired to each other once, here. `main.ts`
 * builds them for `serve`; tests build them with a manual clock and loopback DNS.
 */
export interface Services {
  verification: VerificationService;
  webhooks: WebhookService;
  metrics?: Metrics;
  /** Undefined when PORTICO_TLS_ISSUER=none. */
  certificates?: CertificateService;
  issuer?: CertIssuer;
  /** Attached to the app and domain services. */
  hooks: LifecycleHooks;
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
  /** Also told of every status change (tests observe through it); webhooks get them regardless. */
  onEvent?: (event: DomainEvent | CertificateEvent, subject: { hostname: string; domain?: Domain }) => void;
}

/** A status change: `domain.verified`, `certificate.issued`, … with what it is about. */
export type EventSink = (
  tx: Store,
  event: DomainEvent | CertificateEvent,
  subject: { hostname: string; domain?: Domain },
  now: Date,
) => Promise<void>;

export async function createServices(deps: ServiceDeps): Promise<Services> {
  const { config, store, clock, logger } = deps;
  // Seals private keys and webhook secrets; several nodes must share it (PORTICO_ENCRYPTION_KEY).
  const box = openSecretBox(config);
  const issuer =
    deps.issuer === undefined
      ? await createIssuer(config, store, box, clock, logger)
      : (deps.issuer ?? undefined);
  const { metrics } = deps;
  const webhooks = new WebhookService(store, box, config, clock, (outcome) =>
    metrics?.webhookDeliveries.inc({ outcome }),
  );
  // Events about customers' domains go to their organization's webhooks; a certificate of an app's
  // default hostname belongs to the platform and is only logged.
  const events: EventSink = async (tx, event, subject, now) => {
    logger.info({ event, hostname: subject.hostname, domainId: subject.domain?.id }, 'event');
    deps.onEvent?.(event, subject);
    if (event.startsWith('certificate.'))
      metrics?.certificates.inc({ event: event.slice('certificate.'.length) });
    if (subject.domain) await webhooks.record(tx, event, subject.domain, now);
  };
  const certificates = issuer
    ? new CertificateService(store, issuer, box, config, clock, {
        onEvent: (tx, subject, event, now) => events(tx, event, subject, now),
      })
    : undefined;

  const verificationHooks: VerificationHooks = {
    onChecked: (outcome) => metrics?.checks.inc({ outcome }),
    onReadyForCertificate: async (tx, domain, now) => certificates?.requestForDomain(tx, domain, now),
    onEvent: async (tx, domain, event, now) => {
      await events(tx, event, { hostname: domain.name, domain }, now);
      if (event === 'domain.moved') {
        await certificates?.dropForDomain(tx, domain.id);
        await tx.publishServingChange(domain.name);
      }
    },
  };
  const verification = new VerificationService(
    store,
    deps.resolvers ?? createResolvers(config),
    config,
    clock,
    verificationHooks,
  );

  const defaultHostname = (slug: string) => `${slug}.${config.appsDomain}`;
  /** Every hostname an app answers on: its default hostname and its domains. */
  const publishAppHostnames = async (tx: Store, app: App) => {
    for (const name of [defaultHostname(app.slug), ...(await tx.listDomainNames(app.id))]) {
      await tx.publishServingChange(name);
    }
  };
  const hooks: LifecycleHooks = {
    appCreated: async (tx, app, now) => certificates?.requestForApp(tx, app, defaultHostname(app.slug), now),
    appRenamed: async (tx, before, after, now) => {
      await certificates?.dropHostname(tx, defaultHostname(before.slug));
      await certificates?.requestForApp(tx, after, defaultHostname(after.slug), now);
      await tx.publishServingChange(defaultHostname(before.slug));
    },
    appRoutingChanged: (tx, app) => publishAppHostnames(tx, app),
    appRemoved: async (tx, app) => {
      await certificates?.dropForApp(tx, app.id);
      await publishAppHostnames(tx, app);
    },
    domainRemoved: async (tx, domain) => {
      await certificates?.dropForDomain(tx, domain.id);
      await tx.publishServingChange(domain.name);
    },
  };

  return {
    verification,
    webhooks,
    metrics,
    certificates,
    issuer,
    hooks,
    box,
    handlers: [
      ...domainCheckHandlers(verification),
      ...(certificates ? certificateHandlers(certificates) : []),
      ...webhookHandlers(webhooks),
    ],
  };
}
