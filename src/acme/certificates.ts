import { addSeconds, type Clock, iso } from '../domain/clock.js';
import { type DnsRecord, type DnsSettings, delegationRecord } from '../domain/dns-records.js';
import { newId } from '../domain/ids.js';
import { isLive, onCertificate } from '../domain/lifecycle.js';
import { appsWildcardHostname } from '../domain/serving.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { App, CertificateRecord, Domain, JobOutcome, Store } from '../store/store.js';
import type { DnsChallengeWriter } from './acme-issuer.js';
import { IssuanceBudget, type IssuanceLimits } from './issuance-budget.js';
import {
  type AccountKeyStore,
  CertIssueError,
  type CertIssuer,
  type ChallengeStore,
  type IssueOptions,
} from './issuer.js';
import { issueRetrySeconds, renewalTime } from './renewal.js';

/**
 * Certificates for served hostnames: asking for them, obtaining them from the issuer and keeping
 * them renewed. Modelled on CertMagic: one current certificate per name, replaced atomically by its
 * renewal, which starts in the last part of its lifetime and backs off on failure while the old
 * certificate keeps being served. The timing is `renewal.ts`, the hourly order budgets
 * `issuance-budget.ts`; the edge reads what is stored through `certificate-reader.ts`.
 */
export const ISSUE_JOB = 'cert:issue';
export const RENEW_JOB = 'cert:renew';
export const issueJobKey = (hostname: string) => `${ISSUE_JOB}:${hostname}`;
export const renewJobKey = (hostname: string) => `${RENEW_JOB}:${hostname}`;

export type CertificateEvent =
  | 'certificate.issued'
  | 'certificate.renewed'
  | 'certificate.failed'
  | 'domain.active';

export interface CertificateHooks {
  /**
   * Whether the customer's `_acme-challenge` delegation is in place (asked of DNS before each order
   * of a domain that has one): then the order is validated by DNS-01, wherever the domain points.
   */
  delegationInPlace?(record: DnsRecord, signal: AbortSignal): Promise<boolean>;
  onEvent?(
    tx: Store,
    subject: { hostname: string; domain?: Domain },
    event: CertificateEvent,
    now: Date,
  ): Promise<void>;
}

export interface CertificateSettings
  extends IssuanceLimits,
    Pick<DnsSettings, 'acmeDnsZone' | 'acmeChallengeTypes'> {
  certRenewFraction: number;
  /** Apps' default hostnames are `{slug}.{appsDomain}`; `*.{appsDomain}` covers them all. */
  appsDomain: string;
}

/**
 * Who a hostname is served for: a customer's proven domain, an app's default hostname, or the
 * platform itself (the wildcard of the apps domain, which serves every app's default hostname).
 */
type Owner = { kind: 'domain'; domain: Domain } | { kind: 'app'; app: App } | { kind: 'platform' };

/** Whose turn in the job queue a certificate's work takes (docs/architecture.md, "Jobs and leases"). */
const orgOf = (owner: Owner): string | null =>
  owner.kind === 'domain' ? owner.domain.orgId : owner.kind === 'app' ? owner.app.orgId : null;

export class CertificateService {
  /** `*.{apps domain}`: one certificate for every app's default hostname, where the issuer can. */
  private readonly wildcardHostname: string;
  private readonly budgets: IssuanceBudget;

  constructor(
    private readonly store: Store,
    private readonly issuer: CertIssuer,
    private readonly box: SecretBox,
    private readonly settings: CertificateSettings,
    private readonly clock: Clock,
    private readonly hooks: CertificateHooks = {},
  ) {
    this.wildcardHostname = appsWildcardHostname(settings.appsDomain);
    this.budgets = new IssuanceBudget(store, settings);
  }

  /** Queues a certificate for a domain whose ownership and routing hold (inside the caller's transaction). */
  async requestForDomain(tx: Store, domain: Domain, now: Date): Promise<void> {
    await this.request(tx, domain.name, { domainId: domain.id, appId: domain.appId }, domain.orgId, now);
  }

  /**
   * Makes sure an app's default hostname will have a certificate: the apps domain's wildcard when
   * the issuer makes wildcards (one order for every app there will be), else one of its own.
   */
  async requestForApp(tx: Store, app: App, hostname: string, now: Date): Promise<void> {
    if (this.issuer.wildcards) await this.requestWildcard(tx, now);
    // The app's organization's work: an organization creating many apps queues behind itself.
    else await this.request(tx, hostname, { domainId: null, appId: app.id }, app.orgId, now);
  }

  /**
   * Queues the wildcard unless it exists in any state (issued, or pending/failed with its issue job
   * queued). Inserted only if absent, so concurrent creates never overwrite an issued certificate.
   */
  private async requestWildcard(tx: Store, now: Date): Promise<void> {
    const hostname = this.wildcardHostname;
    const inserted = await tx.insertCertificateIfAbsent({
      ...this.pendingRecord(hostname, now),
      domainId: null,
      appId: null,
    });
    // The platform's own work (null: a turn of its own in the job queue), shared by every organization's apps.
    if (inserted) await this.enqueueIssue(tx, hostname, null, now);
  }

  private pendingRecord(hostname: string, now: Date) {
    return {
      hostname,
      status: 'pending' as const,
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
    };
  }

  private async enqueueIssue(tx: Store, hostname: string, orgId: string | null, now: Date): Promise<void> {
    await tx.enqueueJob(
      { kind: ISSUE_JOB, key: issueJobKey(hostname), payload: { hostname }, orgId, runAt: iso(now) },
      newId('job'),
      iso(now),
    );
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
    await tx.putCertificate({ ...this.pendingRecord(hostname, now), ...owner });
    await this.enqueueIssue(tx, hostname, orgId, now);
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
    // Whose budget the order uses: the domain's organization, or the platform for its own names.
    const budget = owner.kind === 'domain' ? owner.domain.orgId : null;
    const limited = await this.budgets.place(hostname, budget, now);
    if (limited) return limited;
    try {
      const delegation = await this.delegationOf(owner, signal);
      const issued = await this.issuer.issue([hostname], { signal, delegation });
      const done = this.clock.now();
      const renewAt = renewalTime(issued.notBefore, issued.notAfter, this.settings.certRenewFraction);
      await this.store.transaction(async (tx) => {
        // A hand-over of the name waits for this to commit (or this sees it), so a claim moved
        // meanwhile is never made `active` again beside the one that took the name.
        await tx.lockDomainName(hostname);
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
        await this.budgets.record(tx, hostname, 'issued', done, budget);
        await tx.enqueueJob(
          {
            kind: RENEW_JOB,
            key: renewJobKey(hostname),
            payload: { hostname },
            orgId: orgOf(owner),
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
        const transition = domain && onCertificate(domain);
        if (domain && transition) {
          const active = await tx.updateDomain(domain.id, { ...transition.patch, updatedAt: iso(done) });
          await this.hooks.onEvent?.(tx, { hostname, domain: active ?? domain }, transition.event, done);
        }
      });
      return undefined;
    } catch (error) {
      if (!(error instanceof CertIssueError)) throw error;
      const failures = record.failures + 1;
      const delay = issueRetrySeconds(failures, error.retryable, error.retryAfterSeconds);
      await this.store.transaction(async (tx) => {
        await tx.recordCertificateFailure(hostname, error.message, iso(this.clock.now()));
        await this.budgets.record(tx, hostname, `failed:${error.code}`, this.clock.now(), budget);
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

  /** Where DNS-01 is answered for a domain whose delegation is in place; undefined otherwise. */
  private async delegationOf(owner: Owner, signal: AbortSignal): Promise<IssueOptions['delegation']> {
    if (owner.kind !== 'domain') return undefined;
    const { domain } = owner;
    const record = delegationRecord(domain.orgId, domain.name, this.settings);
    if (!record || !(await this.hooks.delegationInPlace?.(record, signal))) return undefined;
    return { label: record.value.split('.', 1)[0] as string, domainId: domain.id };
  }

  /** The owner the hostname may still be served for, or undefined. */
  private async ownerOf(store: Store, record: CertificateRecord): Promise<Owner | undefined> {
    // The platform's wildcard stays while the issuer can make it; apps come and go beneath it.
    if (record.hostname === this.wildcardHostname && !record.domainId && !record.appId) {
      return this.issuer.wildcards ? { kind: 'platform' } : undefined;
    }
    if (record.domainId) {
      const domain = await store.findDomainById(record.domainId);
      return domain && domain.name === record.hostname && isLive(domain.status)
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

/**
 * How long a DNS-01 answer stays in the challenge zone at most, should the issuance that put it die
 * before removing it: an order's validation is over in minutes (`pollTimeoutMs`, 3 min).
 */
const DNS_CHALLENGE_TTL_SECONDS = 3600;

/** DNS-01 answers in the store's challenge zone, where every dns node answers them. */
export function storeDnsChallenges(store: Store, clock: Clock): DnsChallengeWriter {
  return {
    put: async (label, value, domainId) => {
      const now = clock.now();
      const stored = await store.putDnsChallenge({
        label,
        value,
        domainId,
        createdAt: iso(now),
        expiresAt: iso(addSeconds(now, DNS_CHALLENGE_TTL_SECONDS)),
      });
      // The claim was removed while its order ran: nothing to answer for.
      if (!stored) throw new Error('the domain was removed while its certificate was being ordered');
    },
    remove: (label, value) => store.removeDnsChallenge(label, value),
  };
}
