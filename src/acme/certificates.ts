import { addSeconds, type Clock, iso } from '../domain/clock.js';
import { newId } from '../domain/ids.js';
import type { App, CertificateRecord, Domain, Store } from '../store/store.js';
import type { JobOutcome } from '../worker/runner.js';
import { type AccountKeyStore, CertIssueError, type CertIssuer, type ChallengeStore } from './issuer.js';
import type { SecretBox } from './secret-box.js';

/**
 * Certificates for served hostnames: asking for them, obtaining them from the issuer, keeping them
 * renewed, and handing them to the edge. Modelled on CertMagic: one current certificate per name,
 * replaced atomically by its renewal, which starts in the last part of its lifetime and backs off
 * on failure while the old certificate keeps being served.
 */
export const ISSUE_JOB = 'cert:issue';
export const RENEW_JOB = 'cert:renew';
export const issueJobKey = (hostname: string) => `${ISSUE_JOB}:${hostname}`;
export const renewJobKey = (hostname: string) => `${RENEW_JOB}:${hostname}`;

/**
 * After a failed attempt, how long until the next, by failures so far. A retryable failure (the CA
 * or the network) is retried within minutes at first; a permanent one (CAA forbids the CA, the
 * challenge could not reach us) needs the customer to change DNS, so it is retried less often and
 * the DNS re-verification meanwhile keeps `verification_errors` current. A Retry-After from the CA
 * is honoured whenever it asks for longer.
 *
 *   failures     1      2      3       4     5     6+
 *   retryable    1 min  5 min  15 min  1 h   3 h   6 h
 *   permanent    1 h    3 h    6 h     12 h  24 h  24 h
 */
const RETRYABLE_BACKOFF_SECONDS = [60, 5 * 60, 15 * 60, 3600, 3 * 3600, 6 * 3600];
const PERMANENT_BACKOFF_SECONDS = [3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600];
export function issueRetrySeconds(failures: number, retryable: boolean): number {
  const table = retryable ? RETRYABLE_BACKOFF_SECONDS : PERMANENT_BACKOFF_SECONDS;
  return table[Math.min(failures, table.length) - 1] ?? (table.at(-1) as number);
}

/** When to renew: once `fraction` of the lifetime is left (CertMagic and Let's Encrypt use a third). */
export function renewalTime(notBefore: Date, notAfter: Date, fraction: number): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime * fraction);
}

export type CertificateEvent =
  | 'certificate.issued'
  | 'certificate.renewed'
  | 'certificate.failed'
  | 'domain.active';

export interface CertificateHooks {
  onEvent?(
    tx: Store,
    subject: { hostname: string; domain?: Domain },
    event: CertificateEvent,
    now: Date,
  ): Promise<void>;
}

export interface CertificateSettings {
  certRenewFraction: number;
  issuanceRatePerHour: number;
}

/** Who a hostname is served for: a customer's proven domain, or an app's default hostname. */
type Owner = { kind: 'domain'; domain: Domain } | { kind: 'app'; app: App };

export class CertificateService {
  constructor(
    private readonly store: Store,
    private readonly issuer: CertIssuer,
    private readonly box: SecretBox,
    private readonly settings: CertificateSettings,
    private readonly clock: Clock,
    private readonly hooks: CertificateHooks = {},
  ) {}

  /** Queues a certificate for a domain whose ownership and routing hold (inside the caller's transaction). */
  async requestForDomain(tx: Store, domain: Domain, now: Date): Promise<void> {
    await this.request(tx, domain.name, { domainId: domain.id, appId: domain.appId }, domain.orgId, now);
  }

  /** Queues a certificate for an app's default hostname. */
  async requestForApp(tx: Store, app: App, hostname: string, now: Date): Promise<void> {
    // The app's organization's work: an organization creating many apps queues behind itself.
    await this.request(tx, hostname, { domainId: null, appId: app.id }, app.orgId, now);
  }

  private async request(
    tx: Store,
    hostname: string,
    owner: { domainId: string | null; appId: string },
    orgId: string,
    now: Date,
  ) {
    const existing = await tx.findCertificate(hostname);
    if (existing?.status === 'issued' && existing.domainId === owner.domainId) return;
    await tx.putCertificate({
      hostname,
      ...owner,
      status: 'pending',
      issuer: this.issuer.kind,
      certificatePem: null,
      privateKeyEnc: null,
      notBefore: null,
      notAfter: null,
      renewAt: null,
      lastError: null,
      failures: 0,
      createdAt: iso(now),
      updatedAt: iso(now),
    });
    await tx.enqueueJob(
      { kind: ISSUE_JOB, key: issueJobKey(hostname), payload: { hostname }, orgId, runAt: iso(now) },
      newId('job'),
      iso(now),
    );
  }

  /** Drops the certificates of a domain that is removed or no longer live; the edge stops serving them. */
  async dropForDomain(tx: Store, domainId: string): Promise<void> {
    for (const record of await tx.deleteCertificatesOfDomain(domainId)) await this.forgetJobs(tx, record);
  }

  /** Drops every certificate of an app that is being deleted: its default hostname's and its domains'. */
  async dropForApp(tx: Store, appId: string): Promise<void> {
    for (const record of await tx.deleteCertificatesOfApp(appId)) await this.forgetJobs(tx, record);
  }

  /** Drops the certificate of one hostname (an app's old default hostname after a rename). */
  async dropHostname(tx: Store, hostname: string): Promise<void> {
    const record = await tx.findCertificate(hostname);
    if (record) await this.forget(tx, record);
  }

  /** The `cert:issue` job. */
  issue(hostname: string, signal: AbortSignal): Promise<JobOutcome> {
    return this.obtain(hostname, 'issue', signal);
  }

  /** The `cert:renew` job. */
  renew(hostname: string, signal: AbortSignal): Promise<JobOutcome> {
    return this.obtain(hostname, 'renew', signal);
  }

  /** The certificate and key to serve for `hostname`, or undefined when there is none to serve. */
  async servable(
    hostname: string,
  ): Promise<{ certificatePem: string; privateKeyPem: string; notAfter: Date } | undefined> {
    const record = await this.store.findCertificate(hostname);
    if (!record?.certificatePem || !record.privateKeyEnc || !record.notAfter) return undefined;
    return {
      certificatePem: record.certificatePem,
      privateKeyPem: this.box.open(record.privateKeyEnc),
      notAfter: new Date(record.notAfter),
    };
  }

  private async obtain(hostname: string, mode: 'issue' | 'renew', signal: AbortSignal): Promise<JobOutcome> {
    const now = this.clock.now();
    const record = await this.store.findCertificate(hostname);
    const owner = record && (await this.ownerOf(this.store, record));
    if (!record || !owner) {
      // The domain was removed, moved or never proven, or the app is gone: nothing to do, and
      // nothing to keep renewing.
      if (record) await this.store.transaction((tx) => this.forget(tx, record));
      return undefined;
    }
    // A worker that died after storing the certificate, before finishing its job, left the job to
    // run again: the certificate is there, so there is nothing to order.
    if (mode === 'issue' && record.status === 'issued' && record.certificatePem) return undefined;
    if (mode === 'renew' && record.renewAt && Date.parse(record.renewAt) > now.getTime()) {
      return { retryAt: new Date(record.renewAt), error: 'not due yet' };
    }
    const limited = await this.rateLimited(now);
    if (limited) return limited;

    await this.store.recordCertificateOrder(newId('job'), hostname, 'placed', iso(now));
    try {
      const issued = await this.issuer.issue([hostname], { signal });
      const done = this.clock.now();
      const renewAt = renewalTime(issued.notBefore, issued.notAfter, this.settings.certRenewFraction);
      await this.store.transaction(async (tx) => {
        const current = await tx.findCertificate(hostname);
        // Removed or handed over while the CA was working: the certificate is not stored.
        if (!current || current.domainId !== record.domainId || !(await this.ownerOf(tx, current))) return;
        await tx.putCertificate({
          ...current,
          status: 'issued',
          issuer: issued.issuer,
          certificatePem: issued.certificatePem,
          privateKeyEnc: this.box.seal(issued.privateKeyPem),
          notBefore: iso(issued.notBefore),
          notAfter: iso(issued.notAfter),
          renewAt: iso(renewAt),
          lastError: null,
          failures: 0,
          updatedAt: iso(done),
        });
        await tx.recordCertificateOrder(newId('job'), hostname, 'issued', iso(done));
        await tx.enqueueJob(
          {
            kind: RENEW_JOB,
            key: renewJobKey(hostname),
            payload: { hostname },
            orgId: owner.kind === 'domain' ? owner.domain.orgId : owner.app.orgId,
            runAt: iso(renewAt),
          },
          newId('job'),
          iso(done),
        );
        const domain = owner.kind === 'domain' ? owner.domain : undefined;
        const renewed = current.certificatePem !== null;
        await this.hooks.onEvent?.(
          tx,
          { hostname, domain },
          renewed ? 'certificate.renewed' : 'certificate.issued',
          done,
        );
        // Every edge drops the name's cached certificate once this commits.
        await tx.publishServingChange(hostname);
        if (domain?.status === 'verified') {
          const active = await tx.updateDomain(domain.id, { status: 'active', updatedAt: iso(done) });
          await this.hooks.onEvent?.(tx, { hostname, domain: active ?? domain }, 'domain.active', done);
        }
      });
      return undefined;
    } catch (error) {
      if (!(error instanceof CertIssueError)) throw error;
      const failures = record.failures + 1;
      const delay = Math.max(issueRetrySeconds(failures, error.retryable), error.retryAfterSeconds ?? 0);
      await this.store.transaction(async (tx) => {
        await tx.recordCertificateFailure(hostname, error.message, iso(this.clock.now()));
        await tx.recordCertificateOrder(
          newId('job'),
          hostname,
          `failed:${error.code}`,
          iso(this.clock.now()),
        );
        await this.hooks.onEvent?.(
          tx,
          { hostname, domain: owner.kind === 'domain' ? owner.domain : undefined },
          'certificate.failed',
          now,
        );
      });
      return { retryAt: addSeconds(this.clock.now(), delay), error: error.message };
    }
  }

  /**
   * Past the per-account limit, the job waits instead of tripping the CA's own limit (which would
   * block every domain for hours). Counted over all workers through the store.
   */
  private async rateLimited(now: Date): Promise<JobOutcome> {
    const placed = await this.store.countCertificateOrders(iso(addSeconds(now, -3600)), 'placed');
    if (placed < this.settings.issuanceRatePerHour) return undefined;
    return {
      retryAt: addSeconds(now, 60),
      error: `waiting: ${placed} orders in the last hour reach the limit of ${this.settings.issuanceRatePerHour}`,
    };
  }

  /** The owner the hostname may still be served for, or undefined. */
  private async ownerOf(store: Store, record: CertificateRecord): Promise<Owner | undefined> {
    if (record.domainId) {
      const domain = await store.findDomainById(record.domainId);
      return domain &&
        domain.name === record.hostname &&
        (domain.status === 'verified' || domain.status === 'active')
        ? { kind: 'domain', domain }
        : undefined;
    }
    const app = record.appId ? await store.findAppById(record.appId) : undefined;
    return app ? { kind: 'app', app } : undefined;
  }

  private async forget(tx: Store, record: CertificateRecord): Promise<void> {
    await tx.deleteCertificate(record.hostname);
    await this.forgetJobs(tx, record);
  }

  /** Stops issuing and renewing for a certificate that is gone, and tells the edge. */
  private async forgetJobs(tx: Store, record: CertificateRecord): Promise<void> {
    await tx.deleteJob(issueJobKey(record.hostname));
    await tx.deleteJob(renewJobKey(record.hostname));
    await tx.publishServingChange(record.hostname);
  }
}

/**
 * Challenge answers kept in the store, so whichever edge node the CA reaches can answer: HTTP-01
 * answers by token, TLS-ALPN-01 answers by `tlsAlpnChallengeKey(hostname)`, in one table.
 */
export function storeChallenges(store: Store, clock: Clock): ChallengeStore {
  return {
    put: (key, keyAuthorization) => store.putChallenge(key, keyAuthorization, iso(clock.now())),
    remove: (key) => store.deleteChallenge(key),
  };
}

/** The ACME account key, encrypted in the store's settings: one account for every node. */
export function storeAccountKeys(store: Store, box: SecretBox, clock: Clock): AccountKeyStore {
  const KEY = 'acme_account_key';
  return {
    get: async () => {
      const sealed = await store.findSetting(KEY);
      return sealed === undefined ? undefined : box.open(sealed);
    },
    putIfAbsent: async (privateKeyPem) =>
      box.open(await store.putSettingIfAbsent(KEY, box.seal(privateKeyPem), iso(clock.now()))),
  };
}
