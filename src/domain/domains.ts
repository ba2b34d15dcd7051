import type { App, CertificateRecord, Domain, Page, PageOf, Store } from '../store/store.js';
import { UniqueViolation } from '../store/store.js';
import { addSeconds, type Clock, iso } from './clock.js';
import { type DnsSettings, delegatesDns01 } from './dns-records.js';
import { errors } from './errors.js';
import type { LifecycleHooks } from './hooks.js';
import { type HostnamePolicy, normalizeHostname, parseCustomerHostname } from './hostname.js';
import { newId, newTimeOrderedId, newVerificationToken } from './ids.js';
import { isLive, NEW_CLAIM, onVerifyRequest } from './lifecycle.js';
import {
  REVERIFY_JOB,
  reverifyJobKey,
  VERIFY_JOB,
  type VerificationService,
  verifyJobKey,
} from './verification.js';

/** The longest a `verify` request waits for DNS before answering `verifying` and leaving it to the worker. */
const INLINE_CHECK_TIMEOUT_MS = 10_000;
/** How long the queued check waits for the inline one before a worker may take it. */
const INLINE_CHECK_GRACE_SECONDS = 30;
/**
 * `verify` on a verified or active domain checks DNS at once unless the domain was checked this
 * recently (by anyone: a verify, or the schedule): then it answers what that check found, with its
 * time in `last_checked_at`. One check per domain per 10 s bounds what a client looping on verify
 * costs DNS, and a customer who just fixed a record waits no more than that to see it.
 */
export const RECHECK_ON_REQUEST_MIN_SECONDS = 10;

/** Claims of customers' domains on apps: add, read, mark primary, remove, and ask for verification. */
export class DomainService {
  constructor(
    private readonly store: Store,
    private readonly policy: Omit<HostnamePolicy, 'wildcards'> &
      Partial<Pick<DnsSettings, 'acmeDnsZone' | 'acmeChallengeTypes'>> & { maxDomainsPerOrg?: number },
    private readonly clock: Clock,
    private readonly options: {
      /** Checks DNS at once on `verify`; without it the worker's first poll does. */
      verification?: VerificationService;
      hooks?: LifecycleHooks;
      /** Names this process as the holder of the checks it runs inline. */
      holder?: string;
      /** Makes a new domain's id; tests pass one that clashes. */
      newDomainId?: (now: Date) => string;
    } = {},
  ) {}

  /**
   * Adds a claim with a fresh token, `pending` until verification is asked for. A name sits on one
   * app per organization; other organizations may hold their own claims on it (the one that proves
   * DNS control wins, at verification).
   */
  async add(orgId: string, appId: string, input: { domain: string; isPrimary: boolean }): Promise<Domain> {
    // A wildcard's certificate needs DNS-01: it may be claimed only where Portico answers that.
    const name = parseCustomerHostname(input.domain, {
      appsDomain: this.policy.appsDomain,
      wildcards: delegatesDns01(this.policy),
    });
    const createdAt = this.clock.now();
    const now = iso(createdAt);
    let domain: Domain = {
      id: this.newDomainId(createdAt),
      appId,
      orgId,
      name,
      ...NEW_CLAIM,
      isPrimary: input.isPrimary,
      verificationToken: newVerificationToken(),
      createdAt: now,
      updatedAt: now,
      lastCheckedAt: null,
      nextCheckAt: null,
      verificationErrors: [],
      routingObserved: [],
      routingVia: null,
      serving: null,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.transaction(async (tx) => {
          await this.lockApp(tx, orgId, appId);
          // A name the organization holds already is found by the unique index below, not by a read
          // first: adding a new name, the common case, costs no extra query.
          const limit = this.policy.maxDomainsPerOrg;
          if (!(await tx.adjustDomainCount(orgId, 1, limit))) {
            // At the limit, re-adding a name the organization holds is still that conflict.
            const existing = await tx.findDomainInOrg(orgId, name);
            throw existing ? this.claimConflict(existing, appId) : errors.domainQuotaExceeded(limit ?? 0);
          }
          if (domain.isPrimary) await tx.clearPrimary(appId, domain.id, now);
          await tx.insertDomain(domain);
        });
        return domain;
      } catch (error) {
        if (error instanceof UniqueViolation && error.index === 'domains_pkey' && attempt < 3) {
          // Another claim made in the same second drew the same random half of a time-ordered id
          // (see newTimeOrderedId). The transaction was undone whole: again with a new id.
          domain = { ...domain, id: this.newDomainId(createdAt) };
          continue;
        }
        // The name is on one of the organization's apps (maybe added by a concurrent request): the
        // unique index let the first claim win, and the caller is told which conflict it hit.
        if (error instanceof UniqueViolation && error.index === 'domains_org_name_key') {
          const existing = await this.store.findDomainInOrg(orgId, name);
          throw existing ? this.claimConflict(existing, appId) : errors.concurrentUpdate();
        }
        throw this.translate(error);
      }
    }
  }

  async list(orgId: string, appId: string, page: Page): Promise<PageOf<Domain>> {
    await this.requireApp(orgId, appId);
    return this.store.listDomains(appId, page);
  }

  async get(orgId: string, appId: string, domainParam: string): Promise<Domain> {
    await this.requireApp(orgId, appId);
    return this.requireDomain(this.store, appId, domainParam);
  }

  /** Sets or unsets the primary flag; setting one unsets the app's other primary in the same transaction. */
  async setPrimary(orgId: string, appId: string, domainParam: string, isPrimary: boolean): Promise<Domain> {
    const now = iso(this.clock.now());
    try {
      return await this.store.transaction(async (tx) => {
        const app = await this.lockApp(tx, orgId, appId);
        const domain = await this.requireDomain(tx, appId, domainParam);
        if (isPrimary) await tx.clearPrimary(appId, domain.id, now);
        const updated = (await tx.updateDomain(domain.id, { isPrimary, updatedAt: now })) ?? domain;
        // Which domains redirect to which changed.
        await this.options.hooks?.appRoutingChanged?.(tx, app, this.clock.now());
        return updated;
      });
    } catch (error) {
      throw this.translate(error);
    }
  }

  /** Removes the claim and its pending checks; the edge stops serving it on its next lookup. */
  async remove(orgId: string, appId: string, domainParam: string): Promise<Domain> {
    return this.store.transaction(async (tx) => {
      await this.lockApp(tx, orgId, appId);
      const domain = await this.requireDomain(tx, appId, domainParam);
      await tx.deleteJob(verifyJobKey(domain.id));
      await tx.deleteJob(reverifyJobKey(domain.id));
      await tx.deleteDomain(domain.id);
      await tx.adjustDomainCount(orgId, -1);
      await this.options.hooks?.domainRemoved?.(tx, domain, this.clock.now());
      return domain;
    });
  }

  /**
   * Starts (or restarts) verification: a pending, failed or moved domain becomes `verifying`, and
   * DNS is checked at once, so a customer whose records exist is answered `verified` right away.
   * A verified or active domain gets its re-verification now (RECHECK_ON_REQUEST_MIN_SECONDS),
   * which records what DNS says but, asked for rather than scheduled, never counts a failure
   * against the domain (see CheckOptions in verification.ts).
   */
  async requestVerification(orgId: string, appId: string, domainParam: string): Promise<Domain> {
    const now = iso(this.clock.now());
    type Requested = { domain: Domain; job?: typeof VERIFY_JOB | typeof REVERIFY_JOB };
    const requested = await this.store.transaction(async (tx): Promise<Requested> => {
      await this.lockApp(tx, orgId, appId);
      const domain = await this.requireDomain(tx, appId, domainParam);
      const transition = onVerifyRequest(domain, now);
      if (!transition) {
        const checkedAgo = domain.lastCheckedAt
          ? (this.clock.now().getTime() - Date.parse(domain.lastCheckedAt)) / 1000
          : Number.POSITIVE_INFINITY;
        const recheck = isLive(domain.status) && checkedAgo >= RECHECK_ON_REQUEST_MIN_SECONDS;
        return { domain, job: recheck ? REVERIFY_JOB : undefined };
      }
      // With an inline check coming, the workers' copy of the job waits a little: otherwise a
      // worker polling at this moment takes it first and the client is answered `verifying` even
      // though its records are there. Should this process die mid-check, a worker runs it then.
      const runAt = this.options.verification
        ? iso(addSeconds(this.clock.now(), INLINE_CHECK_GRACE_SECONDS))
        : now;
      await tx.enqueueJob(
        {
          kind: VERIFY_JOB,
          key: verifyJobKey(domain.id),
          payload: { domainId: domain.id },
          orgId: domain.orgId,
          runAt,
        },
        newId('job'),
        now,
      );
      await tx.deleteJob(reverifyJobKey(domain.id));
      const updated = await tx.updateDomain(domain.id, {
        ...transition.patch,
        nextCheckAt: now,
        updatedAt: now,
      });
      return { domain: updated ?? domain, job: VERIFY_JOB };
    });
    const { verification, holder = `api:${process.pid}` } = this.options;
    if (!requested.job || !verification) return requested.domain;
    // Checked here rather than by the worker's next poll; if a worker holds the check right now,
    // its result lands in the store and the client sees it on its next read.
    const signal = AbortSignal.timeout(INLINE_CHECK_TIMEOUT_MS);
    return (
      (await verification.checkNow(requested.domain.id, holder, signal, requested.job)) ?? requested.domain
    );
  }

  /** The certificates of these domains, by domain id (for presenting them). */
  async certificatesOf(domains: readonly Domain[]): Promise<Map<string, CertificateRecord>> {
    const records = await this.store.findCertificatesByDomainIds(domains.map((domain) => domain.id));
    return new Map(records.map((record) => [record.domainId as string, record]));
  }

  private async lockApp(tx: Store, orgId: string, appId: string): Promise<App> {
    const app = await tx.findAppForUpdate(orgId, appId);
    if (!app) throw errors.appNotFound(appId);
    return app;
  }

  private async requireApp(orgId: string, appId: string): Promise<void> {
    if (!(await this.store.findApp(orgId, appId))) throw errors.appNotFound(appId);
  }

  /** The app's domain named by a path parameter, normalized as on add (`Shop.Acme.com.` finds `shop.acme.com`). */
  private async requireDomain(store: Store, appId: string, domainParam: string): Promise<Domain> {
    const domain = await store.findDomain(appId, normalizeHostname(domainParam));
    if (!domain) throw errors.domainNotFound(domainParam);
    return domain;
  }

  private newDomainId(now: Date): string {
    return this.options.newDomainId?.(now) ?? newTimeOrderedId('dom', now);
  }

  private claimConflict(existing: Domain, appId: string) {
    return existing.appId === appId
      ? errors.domainAlreadyAdded(existing.name)
      : errors.domainInUse(existing.name);
  }

  private translate(error: unknown): unknown {
    if (error instanceof UniqueViolation && error.index === 'domains_one_primary_per_app') {
      return errors.concurrentUpdate();
    }
    return error;
  }
}
