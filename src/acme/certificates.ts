import { addSeconds, type Clock, iso } from '../domain/clock.js';
import { type DnsRecord, type DnsSettings, delegationRecord } from '../domain/dns-records.js';
import { newId } from '../domain/ids.js';
import { isLive, onCertificate } from '../domain/lifecycle.js';
import { appsWildcardHostname, type DropReason } from '../domain/serving.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { App, CertificateRecord, Domain, JobOutcome, Store } from '../store/store.js';
import type { DnsChallengeWriter } from './acme-issuer.js';
import { ariCertId } from './ari.js';
import { type Budget, IssuanceBudget, type IssuanceLimits } from './issuance-budget.js';
import {
  type AccountKeyStore,
  CertIssueError,
  type CertIssuer,
  type ChallengeStore,
  type IssueOptions,
  type RevocationReason,
} from './issuer.js';
import {
  ariPollSeconds,
  ariRenewalTime,
  expiryAlertTime,
  issueRetrySeconds,
  type RandomSource,
  renewalTime,
} from './renewal.js';

/**
 * Certificates for served hostnames: asking for them, obtaining them from the issuer and keeping
 * them renewed. Modelled on CertMagic: one current certificate per name, replaced atomically by its
 * renewal, which starts in the last part of its lifetime and backs off on failure while the old
 * certificate keeps being served. The timing is `renewal.ts`, the hourly order budgets
 * `issuance-budget.ts`; the edge reads what is stored through `certificate-reader.ts`.
 */
export const ISSUE_JOB = 'cert:issue';
export const RENEW_JOB = 'cert:renew';
/** Revokes the certificate of a name that left, then deletes its key (`revoke`). */
export const REVOKE_JOB = 'cert:revoke';
/** Announces a certificate that reached the last sixth of its lifetime unrenewed (`alertExpiring`). */
export const EXPIRING_JOB = 'cert:expiring';
export const issueJobKey = (hostname: string) => `${ISSUE_JOB}:${hostname}`;
export const renewJobKey = (hostname: string) => `${RENEW_JOB}:${hostname}`;
export const revokeJobKey = (revocationId: string) => `${REVOKE_JOB}:${revocationId}`;
export const expiringJobKey = (hostname: string) => `${EXPIRING_JOB}:${hostname}`;

/**
 * Tries at revoking one certificate before it is given up (and its key deleted all the same): on
 * the retryable schedule of `issueRetrySeconds` the tenth comes some 34 hours after the first, so
 * a CA outage of a day is ridden out; a refusal the CA repeats (on the permanent schedule) is
 * asked about for five days. A certificate that expires meanwhile needs no revoking at all.
 */
export const MAX_REVOCATION_ATTEMPTS = 10;

/** When to ask again for renewal information the CA did not give (and gave no Retry-After for). */
const ARI_RETRY_SECONDS = 3600;

export type CertificateEvent =
  | 'certificate.issued'
  | 'certificate.renewed'
  | 'certificate.failed'
  | 'certificate.expiring'
  | 'domain.active';

/** How one try at revoking ended: done (`revoked`), not needed (`expired`), or `retrying` / `given_up`. */
export type RevocationOutcome = 'revoked' | 'expired' | 'retrying' | 'given_up';

export interface CertificateHooks {
  /**
   * Whether the customer's `_acme-challenge` delegation is in place (asked of DNS before each order
   * of a domain that has one): then the order is validated by DNS-01, wherever the domain points.
   */
  delegationInPlace?(record: DnsRecord, signal: AbortSignal): Promise<boolean>;
  /** A status change, in its transaction; `data` is what the event says besides the domain. */
  onEvent?(
    tx: Store,
    subject: { hostname: string; domain?: Domain },
    event: CertificateEvent,
    now: Date,
    data?: Record<string, unknown>,
  ): Promise<void>;
  /**
   * What a renewal check learned from the CA's renewal information (logs): the window and the
   * moment picked, or the error when the CA did not answer (the renewal then keeps its time).
   */
  onRenewalInfo?(detail: {
    hostname: string;
    window?: { start: string; end: string };
    renewAt?: string;
    nextPollAt: string;
    explanationUrl?: string;
    error?: string;
  }): void;
  /** A try at revoking (logs and metrics): which certificate, why, and the CA's error if it failed. */
  onRevocation?(
    outcome: RevocationOutcome,
    detail: { hostname: string; reason: RevocationReason; attempts: number; error?: string },
  ): void;
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
    /** Spreads renewal moments (renewal.ts); a seeded source in the renewal benchmark. */
    private readonly random: RandomSource = Math.random,
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
      lastErrorCode: null,
      expiryAlertedAt: null,
      ariWindowStart: null,
      ariWindowEnd: null,
      ariNextPollAt: null,
      caDirectory: null,
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
    // Another claim's certificate still stored under the name is replaced below: revoke it first.
    if (existing?.certificatePem && existing.domainId !== owner.domainId) {
      await this.retire(tx, existing, 'superseded');
    }
    await tx.putCertificate({ ...this.pendingRecord(hostname, now), ...owner });
    await this.enqueueIssue(tx, hostname, orgId, now);
  }

  /**
   * Drops the certificates of a domain that is removed or no longer live: the edge stops serving
   * them when the transaction commits, and each is queued for revocation, with `reason`.
   */
  async dropForDomain(tx: Store, domainId: string, reason: DropReason): Promise<void> {
    for (const record of await tx.deleteCertificatesOfDomain(domainId)) await this.retire(tx, record, reason);
  }

  /** Drops every certificate of an app that is being deleted: its default hostname's and its domains'. */
  async dropForApp(tx: Store, appId: string): Promise<void> {
    for (const record of await tx.deleteCertificatesOfApp(appId)) {
      await this.retire(tx, record, 'cessationOfOperation');
    }
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
      // nothing to keep renewing. Judged again in the transaction, which a new claim's request
      // may have preceded.
      if (record) {
        await this.store.transaction(async (tx) => {
          const current = await tx.findCertificate(hostname);
          if (current && !(await this.ownerOf(tx, current))) await this.forget(tx, current);
        });
      }
      return undefined;
    }
    // A worker that died after storing the certificate, before finishing its job, left the job to
    // run again: the certificate is there, so there is nothing to order.
    if (mode === 'issue' && record.status === 'issued' && record.certificatePem) return undefined;
    // The CA's renewal information, when due for a poll, may move the renewal (RFC 9773).
    const checked = mode === 'renew' ? await this.checkRenewalInfo(record, now, signal) : record;
    if (mode === 'renew' && checked.renewAt && Date.parse(checked.renewAt) > now.getTime()) {
      // Back at the renewal moment, or at the next poll of the window if that comes first.
      const nextPoll = checked.ariNextPollAt ? Date.parse(checked.ariNextPollAt) : Number.POSITIVE_INFINITY;
      return { retryAt: new Date(Math.min(Date.parse(checked.renewAt), nextPoll)), error: 'not due yet' };
    }
    // A renewal inside the window the CA suggested: it names the certificate it replaces, and
    // spends no hourly budget (the CA asked for it; Let's Encrypt exempts it from its own limits).
    const ariTimed =
      mode === 'renew' &&
      checked.certificatePem !== null &&
      checked.ariWindowStart !== null &&
      Date.parse(checked.ariWindowStart) <= now.getTime();
    const replaces = ariTimed && checked.certificatePem ? this.certIdOf(checked.certificatePem) : undefined;
    // Whose budget the order uses: the domain's organization, or the platform for its own names.
    const budget = owner.kind === 'domain' ? owner.domain.orgId : null;
    // What can be checked before ordering (CAA): a refusal here places no order and spends no budget.
    try {
      await this.issuer.precheck?.([hostname], { signal });
    } catch (error) {
      if (!(error instanceof CertIssueError)) throw error;
      return this.failed(record, owner, error, now, { placed: false });
    }
    if (!ariTimed) {
      const limited = await this.budgets.place(hostname, budget, now);
      if (limited) return limited;
    }
    try {
      const delegation = await this.delegationOf(owner, signal);
      const issued = await this.issuer.issue([hostname], {
        signal,
        delegation,
        replaces,
        caDirectory: checked.caDirectory ?? undefined,
      });
      const done = this.clock.now();
      const renewAt = renewalTime(
        issued.notBefore,
        issued.notAfter,
        this.settings.certRenewFraction,
        this.random,
      );
      await this.store.transaction(async (tx) => {
        // A hand-over of the name waits for this to commit (or this sees it), so a claim moved
        // meanwhile is never made `active` again beside the one that took the name.
        await tx.lockDomainName(hostname);
        const current = await tx.findCertificate(hostname);
        const sealed = {
          hostname,
          appId: record.appId,
          issuer: issued.issuer,
          certificatePem: issued.certificatePem,
          privateKeyEnc: this.box.seal(issued.privateKeyPem),
          notAfter: iso(issued.notAfter),
          caDirectory: issued.caDirectory ?? null,
        };
        // Removed or handed over while the CA was working: the certificate is not stored, and the
        // CA is told it is not needed (superseded when another claim holds the name now).
        if (!current || current.domainId !== record.domainId || !(await this.ownerOf(tx, current))) {
          const superseded = current !== undefined && current.domainId !== record.domainId;
          await this.queueRevocation(tx, sealed, superseded ? 'superseded' : 'cessationOfOperation', done);
          return;
        }
        await tx.putCertificate({
          ...current,
          ...sealed,
          status: 'issued',
          notBefore: iso(issued.notBefore),
          renewAt: iso(renewAt),
          lastError: null,
          lastErrorCode: null,
          expiryAlertedAt: null,
          // The new certificate's window is asked for by its first renewal check, right away.
          ariWindowStart: null,
          ariWindowEnd: null,
          ariNextPollAt: null,
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
            // With an issuer that has renewal information, the first check asks for the window
            // now: a CA may want the certificate replaced long before the lifetime rule says.
            runAt: iso(this.issuer.renewalInfo ? done : renewAt),
          },
          newId('job'),
          iso(done),
        );
        await this.enqueueExpiryAlert(tx, hostname, issued.notBefore, issued.notAfter, orgOf(owner), done);
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
      return this.failed(record, owner, error, now, { placed: true, budget });
    }
  }

  /**
   * A failed attempt: recorded with its code on the certificate (a certificate being served stays),
   * logged against the order's budget when one was placed, announced, and tried again after the
   * backoff of `issueRetrySeconds`.
   */
  private async failed(
    record: CertificateRecord,
    owner: Owner,
    error: CertIssueError,
    now: Date,
    order: { placed: true; budget: Budget } | { placed: false },
  ): Promise<JobOutcome> {
    const { hostname } = record;
    const delay = issueRetrySeconds(record.failures + 1, error.retryable, error.retryAfterSeconds);
    await this.store.transaction(async (tx) => {
      const at = this.clock.now();
      await tx.recordCertificateFailure(hostname, error.message, iso(at), error.code);
      if (order.placed) await this.budgets.record(tx, hostname, `failed:${error.code}`, at, order.budget);
      await this.hooks.onEvent?.(
        tx,
        { hostname, domain: owner.kind === 'domain' ? owner.domain : undefined },
        'certificate.failed',
        now,
      );
      // A renewal failing: make sure the expiry alert is due (certificates stored before alerts
      // existed have none yet; for the others this changes nothing).
      if (record.certificatePem && record.notBefore && record.notAfter && !record.expiryAlertedAt) {
        const [notBefore, notAfter] = [new Date(record.notBefore), new Date(record.notAfter)];
        await this.enqueueExpiryAlert(tx, hostname, notBefore, notAfter, orgOf(owner), at);
      }
    });
    return { retryAt: addSeconds(this.clock.now(), delay), error: error.message };
  }

  /**
   * A renewal check's look at the CA's renewal information (RFC 9773), when its poll is due: the
   * window is stored with the next poll (the CA's Retry-After, bounded by `ariPollSeconds`) and a
   * moment picked at random in it becomes `renewAt` (`ariRenewalTime`: kept while it stays in the
   * window; now, when the window has moved into the past). A CA without ARI leaves the lifetime
   * rule's time; one that does not answer leaves whatever time was set, and is asked again in an
   * hour (or after its Retry-After).
   */
  private async checkRenewalInfo(
    record: CertificateRecord,
    now: Date,
    signal: AbortSignal,
  ): Promise<CertificateRecord> {
    const { certificatePem, notAfter, hostname } = record;
    if (!this.issuer.renewalInfo || certificatePem === null || notAfter === null) return record;
    if (record.ariNextPollAt !== null && Date.parse(record.ariNextPollAt) > now.getTime()) return record;
    let info: Awaited<ReturnType<NonNullable<CertIssuer['renewalInfo']>>>;
    try {
      info = await this.issuer.renewalInfo(certificatePem, {
        signal,
        caDirectory: record.caDirectory ?? undefined,
      });
    } catch (error) {
      if (signal.aborted || !(error instanceof CertIssueError)) throw error;
      // Not every minute: each certificate polls on its own, and a CA whose ARI is down would be
      // asked by all of them at once. An hour, or what the CA's Retry-After asks.
      const nextPollAt = iso(addSeconds(now, ariPollSeconds(error.retryAfterSeconds ?? ARI_RETRY_SECONDS)));
      const patch = { ...pickRenewalInfo(record), ariNextPollAt: nextPollAt };
      await this.store.recordCertificateRenewalInfo(hostname, notAfter, patch);
      this.hooks.onRenewalInfo?.({ hostname, nextPollAt, error: error.message });
      return { ...record, ...patch };
    }
    if (info === undefined) {
      // No ARI here: the lifetime rule's time stands, and nothing is polled.
      if (record.ariWindowStart === null && record.ariNextPollAt === null) return record;
      const patch = {
        ...pickRenewalInfo(record),
        ariWindowStart: null,
        ariWindowEnd: null,
        ariNextPollAt: null,
      };
      await this.store.recordCertificateRenewalInfo(hostname, notAfter, patch);
      return { ...record, ...patch };
    }
    // The moment picked in an earlier window, kept while the new one still holds it.
    const previous =
      record.ariWindowStart !== null && record.renewAt !== null ? new Date(record.renewAt) : undefined;
    const renewAt = ariRenewalTime(info.window, now, this.random, previous);
    const patch = {
      ariWindowStart: iso(info.window.start),
      ariWindowEnd: iso(info.window.end),
      ariNextPollAt: iso(addSeconds(now, ariPollSeconds(info.retryAfterSeconds))),
      renewAt: iso(renewAt),
    };
    await this.store.recordCertificateRenewalInfo(hostname, notAfter, patch);
    this.hooks.onRenewalInfo?.({
      hostname,
      window: { start: patch.ariWindowStart, end: patch.ariWindowEnd },
      renewAt: patch.renewAt,
      nextPollAt: patch.ariNextPollAt,
      explanationUrl: info.explanationUrl,
    });
    return { ...record, ...patch };
  }

  /** The ARI identifier of a stored certificate, or undefined when it cannot have one (no AKI). */
  private certIdOf(certificatePem: string): string | undefined {
    try {
      return ariCertId(certificatePem);
    } catch {
      return undefined;
    }
  }

  /**
   * The `cert:expiring` job: announces `certificate.expiring` for the hostname's certificate that
   * expires at `notAfter`, once, if it is still the one served (no renewal replaced it) and its
   * name is still served. The store's mark makes a repeated run (a worker that died after the
   * commit) announce nothing more.
   */
  async alertExpiring(hostname: string, notAfter: string): Promise<JobOutcome> {
    const record = await this.store.findCertificate(hostname);
    if (!record?.certificatePem || record.notAfter !== notAfter || record.expiryAlertedAt) return undefined;
    if (record.notBefore === null) return undefined;
    const owner = await this.ownerOf(this.store, record);
    if (!owner) return undefined;
    const now = this.clock.now();
    const [from, until] = [Date.parse(record.notBefore), Date.parse(notAfter)];
    const alertAt = expiryAlertTime(new Date(from), new Date(until));
    // Enqueued for the alert time; a clock a little behind the scheduler's waits for it.
    if (alertAt.getTime() > now.getTime()) return { retryAt: alertAt, error: 'not due yet' };
    const left = (until - now.getTime()) / (until - from);
    await this.store.transaction(async (tx) => {
      if (!(await tx.markCertificateExpiryAlerted(hostname, notAfter, iso(now)))) return;
      await this.hooks.onEvent?.(
        tx,
        { hostname, domain: owner.kind === 'domain' ? owner.domain : undefined },
        'certificate.expiring',
        now,
        {
          certificate: {
            not_before: record.notBefore,
            not_after: notAfter,
            lifetime_left: Math.round(left * 1000) / 1000,
            last_error: record.lastError,
            last_error_code: record.lastErrorCode,
          },
        },
      );
    });
    return undefined;
  }

  /**
   * The `cert:revoke` job (`attempts`: this run included): asks the CA to revoke the certificate of
   * a name that left, then deletes it and its key. A failure is retried on the backoff of issuance
   * until `MAX_REVOCATION_ATTEMPTS`, then given up (the key is deleted all the same: keeping it
   * longer protects nothing). A certificate already expired needs no revoking.
   */
  async revoke(revocationId: string, attempts: number, signal: AbortSignal): Promise<JobOutcome> {
    const revocation = await this.store.findCertificateRevocation(revocationId);
    if (!revocation) return undefined;
    const reason: RevocationReason =
      revocation.reason === 'superseded' ? 'superseded' : 'cessationOfOperation';
    const detail = { hostname: revocation.hostname, reason, attempts };
    const finish = async (outcome: RevocationOutcome, error?: string) => {
      await this.store.deleteCertificateRevocation(revocation.id);
      this.hooks.onRevocation?.(outcome, { ...detail, error });
      return undefined;
    };
    const now = this.clock.now();
    if (revocation.notAfter !== null && Date.parse(revocation.notAfter) <= now.getTime()) {
      return finish('expired');
    }
    if (!this.issuer.revoke || revocation.issuer !== this.issuer.kind) {
      // Queued under another PORTICO_TLS_ISSUER than the one running now: nobody here can revoke it.
      return finish(
        'given_up',
        `the ${revocation.issuer ?? 'unknown'} issuer that made it is not configured`,
      );
    }
    try {
      await this.issuer.revoke(revocation.certificatePem, reason, {
        signal,
        caDirectory: revocation.caDirectory ?? undefined,
      });
    } catch (caught) {
      // Stopping (shutdown, the job's timeout) is no answer from the CA: the job runs again.
      if (signal.aborted) throw caught;
      const error =
        caught instanceof CertIssueError
          ? caught
          : new CertIssueError('unknown', caught instanceof Error ? caught.message : String(caught));
      if (attempts >= MAX_REVOCATION_ATTEMPTS) return finish('given_up', error.message);
      this.hooks.onRevocation?.('retrying', { ...detail, error: error.message });
      const delay = issueRetrySeconds(attempts, error.retryable, error.retryAfterSeconds);
      return { retryAt: addSeconds(this.clock.now(), delay), error: error.message };
    }
    return finish('revoked');
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

  /** Deletes a hostname's certificate whose name is no longer served, and retires it. */
  private async forget(tx: Store, record: CertificateRecord): Promise<void> {
    await tx.deleteCertificate(record.hostname);
    await this.retire(tx, record, 'cessationOfOperation');
  }

  /**
   * What follows a certificate row's deletion (the caller's), in its transaction: no more issuing,
   * renewing or alerting for it, the edge told, and the certificate queued for revocation, so its
   * key is kept (sealed) until the CA has revoked it.
   */
  private async retire(tx: Store, record: CertificateRecord, reason: RevocationReason): Promise<void> {
    await tx.deleteJob(issueJobKey(record.hostname));
    await tx.deleteJob(renewJobKey(record.hostname));
    await tx.deleteJob(expiringJobKey(record.hostname));
    await tx.publishServingChange(record.hostname);
    if (record.certificatePem === null) return;
    await this.queueRevocation(
      tx,
      { ...record, certificatePem: record.certificatePem },
      reason,
      this.clock.now(),
    );
  }

  /**
   * Queues the revocation of a certificate no longer wanted: a row holding it (and its sealed key)
   * and a `cert:revoke` job, in the caller's transaction, so nothing acknowledged is lost and the
   * request that dropped it never waits for the CA. Certificates of an issuer that revokes nothing
   * (the local CA) or already expired are simply forgotten.
   */
  private async queueRevocation(
    tx: Store,
    certificate: Pick<
      CertificateRecord,
      'hostname' | 'appId' | 'issuer' | 'privateKeyEnc' | 'notAfter' | 'caDirectory'
    > & {
      certificatePem: string;
    },
    reason: RevocationReason,
    now: Date,
  ): Promise<void> {
    if (!this.issuer.revoke || certificate.issuer !== this.issuer.kind) return;
    if (certificate.notAfter !== null && Date.parse(certificate.notAfter) <= now.getTime()) return;
    // The organization the name was served for takes the job's turn (apps outlive their domains'
    // drops: a domain's app is still there, and an app being deleted is deleted after this).
    const app = certificate.appId ? await tx.findAppById(certificate.appId) : undefined;
    const id = newId('rev');
    await tx.insertCertificateRevocation({
      id,
      hostname: certificate.hostname,
      issuer: certificate.issuer,
      certificatePem: certificate.certificatePem,
      privateKeyEnc: certificate.privateKeyEnc,
      reason,
      orgId: app?.orgId ?? null,
      notAfter: certificate.notAfter,
      caDirectory: certificate.caDirectory,
      createdAt: iso(now),
    });
    await tx.enqueueJob(
      {
        kind: REVOKE_JOB,
        key: revokeJobKey(id),
        payload: { revocationId: id },
        orgId: app?.orgId ?? null,
        runAt: iso(now),
      },
      newId('job'),
      iso(now),
    );
  }

  /** Schedules `alertExpiring` for when the certificate has `EXPIRY_ALERT_FRACTION` of its lifetime left. */
  private async enqueueExpiryAlert(
    tx: Store,
    hostname: string,
    notBefore: Date,
    notAfter: Date,
    orgId: string | null,
    now: Date,
  ): Promise<void> {
    await tx.enqueueJob(
      {
        kind: EXPIRING_JOB,
        key: expiringJobKey(hostname),
        payload: { hostname, notAfter: iso(notAfter) },
        orgId,
        runAt: iso(expiryAlertTime(notBefore, notAfter)),
      },
      newId('job'),
      iso(now),
    );
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

/**
 * The ACME account key of one CA, encrypted in the store's settings under its directory URL: one
 * account per CA for every node. The first CA listed (`primary`) takes over the key stored before
 * there could be several (under `acme_account_key` alone), so an existing deployment keeps its
 * account, its rate-limit standing and its certificates' revocation rights.
 */
export function storeAccountKeys(
  store: Store,
  box: SecretBox,
  clock: Clock,
  directoryUrl: string,
  primary: boolean,
): AccountKeyStore {
  const LEGACY = 'acme_account_key';
  const KEY = `${LEGACY}:${directoryUrl}`;
  return {
    get: async () => {
      const sealed =
        (await store.findSetting(KEY)) ?? (primary ? await store.findSetting(LEGACY) : undefined);
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

/** The renewal-information fields of a record, as `recordCertificateRenewalInfo` takes them. */
function pickRenewalInfo(
  record: CertificateRecord,
): Pick<CertificateRecord, 'ariWindowStart' | 'ariWindowEnd' | 'ariNextPollAt' | 'renewAt'> {
  const { ariWindowStart, ariWindowEnd, ariNextPollAt, renewAt } = record;
  return { ariWindowStart, ariWindowEnd, ariNextPollAt, renewAt };
}
