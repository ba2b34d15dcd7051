import { checkOwnership, checkRouting, type OwnershipCheck, type RoutingCheck } from '../dns/checks.js';
import type { Resolver } from '../dns/resolver.js';
import type { Domain, DomainPatch, Store } from '../store/store.js';
import { addSeconds, type Clock, iso } from './clock.js';
import { type DnsSettings, routesByAddress } from './dns-records.js';
import { newId } from './ids.js';
import type { DomainStatus } from './lifecycle.js';

/**
 * Verification: proving a claim's ownership by DNS, then watching that the proof and the routing
 * stay in place for as long as the domain lives (docs/architecture.md, "Verification").
 */

/**
 * While a domain is `verifying`, how soon the next check runs, by how long ago verification
 * started. Customers usually create the records just before asking, or within minutes after, so
 * the first minutes are checked often; a customer who comes back the next day still gets an
 * answer within the hour, without thousands of stale claims costing a query every few seconds.
 *
 *   started less than … ago   next check in
 *   5 minutes                 15 s
 *   30 minutes                1 min
 *   2 hours                   5 min
 *   12 hours                  15 min
 *   later, until the deadline 1 h
 */
const POLL_SCHEDULE: readonly (readonly [elapsedBelow: number, interval: number])[] = [
  [5 * 60, 15],
  [30 * 60, 60],
  [2 * 3600, 5 * 60],
  [12 * 3600, 15 * 60],
  [Number.POSITIVE_INFINITY, 3600],
];

export function pollDelaySeconds(elapsedSeconds: number): number {
  return POLL_SCHEDULE.find(([below]) => elapsedSeconds < below)?.[1] ?? 3600;
}

/**
 * A live domain whose check failed, definitively or not, is checked again this soon instead of
 * after the regular interval: three definitive failures in a row then take about 20 minutes,
 * long enough to ride out a customer's DNS edit, short enough to end a dangling CNAME quickly.
 */
export const RECHECK_AFTER_FAILURE_SECONDS = 10 * 60;
/** Definitive failures in a row that make a live domain `moved`. */
export const MOVED_AFTER_FAILURES = 3;

export interface VerificationSettings extends DnsSettings {
  verifyDeadlineSeconds: number;
  reverifyIntervalSeconds: number;
}

export interface CheckOutcome {
  ownership: OwnershipCheck;
  routing: RoutingCheck;
}

export type DomainEvent = 'domain.verified' | 'domain.failed' | 'domain.moved';

/** What one check changes: pure, so every rule below is tested without DNS or a database. */
export interface Decision {
  patch: DomainPatch;
  /** The next check of this domain, or null when it is no longer watched. */
  next: { kind: typeof VERIFY_JOB | typeof REVERIFY_JOB; runAt: Date } | null;
  event?: DomainEvent;
  /** Ownership was proven just now: other organizations' live claims on the name are `moved`. */
  tookOwnership: boolean;
  /** Ownership and routing hold and the domain has no certificate yet: time to issue one. */
  readyForCertificate: boolean;
}

export const VERIFY_JOB = 'domain:verify';
export const REVERIFY_JOB = 'domain:reverify';
export const verifyJobKey = (domainId: string) => `${VERIFY_JOB}:${domainId}`;
export const reverifyJobKey = (domainId: string) => `${REVERIFY_JOB}:${domainId}`;

export function decide(
  domain: Domain,
  outcome: CheckOutcome,
  now: Date,
  settings: VerificationSettings,
): Decision {
  const { ownership, routing } = outcome;
  const checked: DomainPatch = {
    updatedAt: iso(now),
    lastCheckedAt: iso(now),
    verificationErrors: [...ownership.errors, ...routing.errors],
    routingObserved: routing.observed,
  };
  const after = (seconds: number) => addSeconds(now, seconds);
  const since = (start: string | null) => (now.getTime() - Date.parse(start ?? iso(now))) / 1000;
  const schedule = (patch: DomainPatch, next: Decision['next'], extra: Partial<Decision> = {}): Decision => ({
    patch: { ...patch, nextCheckAt: next ? iso(next.runAt) : null },
    next,
    tookOwnership: false,
    readyForCertificate: false,
    ...extra,
  });

  switch (domain.status) {
    case 'verifying': {
      if (ownership.ok) {
        const routed = routing.ok;
        return schedule(
          { ...checked, status: 'verified', verifiedAt: iso(now), failureStreak: 0 },
          // Routed: the next look is the regular re-verification. Not yet: keep polling routing.
          {
            kind: REVERIFY_JOB,
            runAt: routed ? after(settings.reverifyIntervalSeconds) : after(pollDelaySeconds(0)),
          },
          { event: 'domain.verified', tookOwnership: true, readyForCertificate: routed },
        );
      }
      if (since(domain.verifyingSince) >= settings.verifyDeadlineSeconds) {
        return schedule({ ...checked, status: 'failed' }, null, { event: 'domain.failed' });
      }
      return schedule(checked, {
        kind: VERIFY_JOB,
        runAt: after(pollDelaySeconds(since(domain.verifyingSince))),
      });
    }
    case 'verified':
    case 'active': {
      const live = domain.status === 'active';
      // A verified domain waiting for its CNAME is not failing: only its ownership proof counts
      // against it. An active one must keep both, or its traffic could be someone else's.
      const counted = live ? [ownership, routing] : [ownership];
      const lost = counted.some((check) => !check.ok && check.definitive);
      const inconclusive = counted.some((check) => !check.ok && !check.definitive);
      if (lost) {
        const failureStreak = domain.failureStreak + 1;
        if (failureStreak >= MOVED_AFTER_FAILURES) {
          return schedule({ ...checked, status: 'moved', failureStreak }, null, { event: 'domain.moved' });
        }
        return schedule(
          { ...checked, failureStreak },
          { kind: REVERIFY_JOB, runAt: after(RECHECK_AFTER_FAILURE_SECONDS) },
        );
      }
      if (inconclusive) {
        // DNS did not answer: nothing is held against the domain, and it is asked again soon.
        return schedule(checked, { kind: REVERIFY_JOB, runAt: after(RECHECK_AFTER_FAILURE_SECONDS) });
      }
      if (!live && !routing.ok) {
        return schedule(
          { ...checked, failureStreak: 0 },
          {
            kind: REVERIFY_JOB,
            runAt: after(pollDelaySeconds(since(domain.verifiedAt))),
          },
        );
      }
      return schedule(
        { ...checked, failureStreak: 0 },
        { kind: REVERIFY_JOB, runAt: after(settings.reverifyIntervalSeconds) },
        { readyForCertificate: !live },
      );
    }
    default:
      // pending, failed, moved: nothing watches these until someone asks to verify again.
      return schedule({ updatedAt: iso(now) }, null);
  }
}

/** Statuses a check may act on; a domain found in another status is left alone. */
const CHECKED_STATUSES: ReadonlySet<DomainStatus> = new Set(['verifying', 'verified', 'active']);

export interface Resolvers {
  /** For the ownership TXT: authoritative servers when PORTICO_DNS_AUTHORITATIVE is on. */
  ownership: Resolver;
  routing: Resolver;
}

/** Hooks the certificate and event parts attach to; verification itself knows neither. */
export interface VerificationHooks {
  /** Inside the transaction that made the domain ready, so the request for a certificate is never lost. */
  onReadyForCertificate?(tx: Store, domain: Domain, now: Date): Promise<void>;
  onEvent?(tx: Store, domain: Domain, event: DomainEvent, now: Date): Promise<void>;
  /** After every check: ok, failed (DNS answered, wrongly) or inconclusive (DNS did not answer). */
  onChecked?(outcome: 'ok' | 'failed' | 'inconclusive'): void;
}

export class VerificationService {
  constructor(
    private readonly store: Store,
    private readonly resolvers: Resolvers,
    private readonly settings: VerificationSettings,
    private readonly clock: Clock,
    private readonly hooks: VerificationHooks = {},
  ) {}

  /** Asks DNS about the domain: its ownership record and its routing. No state changes. */
  async inspect(domain: Domain, signal?: AbortSignal): Promise<CheckOutcome> {
    const s = this.settings;
    const [ownership, routing] = await Promise.all([
      checkOwnership(this.resolvers.ownership, {
        domain: domain.name,
        recordName: s.verifyRecordName,
        valuePrefix: s.verifyValuePrefix,
        token: domain.verificationToken,
        signal,
      }),
      checkRouting(this.resolvers.routing, {
        domain: domain.name,
        cnameTarget: s.cnameTarget,
        // Only apexes are asked to use addresses (dns-records.ts); a subdomain must CNAME.
        edgeIPv4: routesByAddress(domain.name, s) ? s.edgeIpv4 : [],
        edgeIPv6: routesByAddress(domain.name, s) ? s.edgeIpv6 : [],
        signal,
      }),
    ]);
    return { ownership, routing };
  }

  /**
   * Checks the domain and records what was found, in one transaction that re-reads the domain
   * first: a domain removed or re-requested while DNS was being asked is judged as it is now.
   * Answers the domain as stored afterwards, or undefined when it no longer exists.
   */
  async check(domainId: string, signal?: AbortSignal): Promise<Domain | undefined> {
    const before = await this.store.findDomainById(domainId);
    if (!before || !CHECKED_STATUSES.has(before.status)) return before;
    const outcome = await this.inspect(before, signal);
    const checks = [outcome.ownership, outcome.routing];
    this.hooks.onChecked?.(
      checks.every((c) => c.ok)
        ? 'ok'
        : checks.some((c) => !c.ok && !c.definitive)
          ? 'inconclusive'
          : 'failed',
    );
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const domain = await tx.findDomainById(domainId);
      if (
        !domain ||
        domain.status !== before.status ||
        domain.verificationToken !== before.verificationToken
      ) {
        return domain;
      }
      const decision = decide(domain, outcome, now, this.settings);
      const updated = (await tx.updateDomain(domain.id, decision.patch)) ?? domain;
      await this.scheduleNext(tx, updated, decision, now);
      if (decision.event) await this.hooks.onEvent?.(tx, updated, decision.event, now);
      if (decision.tookOwnership) await this.handOver(tx, updated, now);
      if (decision.readyForCertificate) await this.hooks.onReadyForCertificate?.(tx, updated, now);
      return updated;
    });
  }

  /**
   * Runs the domain's queued verification now, in the caller's process, when no worker holds it:
   * the lease keeps one domain from being checked by two processes at once. Answers the domain
   * after the check, or undefined when a worker is checking it at this moment.
   */
  async checkNow(domainId: string, holder: string, signal?: AbortSignal): Promise<Domain | undefined> {
    const job = await this.store.claimJob(verifyJobKey(domainId), holder, iso(this.clock.now()));
    if (!job) return undefined;
    try {
      return await this.check(domainId, signal);
    } finally {
      await this.store.completeJob(job, holder);
    }
  }

  private async scheduleNext(tx: Store, domain: Domain, decision: Decision, now: Date): Promise<void> {
    // A domain has at most one pending check: the other kind's job is dropped.
    const keys = { [VERIFY_JOB]: verifyJobKey(domain.id), [REVERIFY_JOB]: reverifyJobKey(domain.id) };
    for (const [kind, key] of Object.entries(keys)) {
      if (decision.next?.kind === kind) {
        await tx.enqueueJob(
          {
            kind,
            key,
            payload: { domainId: domain.id },
            orgId: domain.orgId,
            runAt: iso(decision.next.runAt),
          },
          newId('job'),
          iso(now),
        );
      } else {
        await tx.deleteJob(key);
      }
    }
  }

  /**
   * The claim that proved control of DNS most recently wins: every other organization's live
   * claim on the name is `moved` in the same transaction, so exactly one claim is ever live.
   */
  private async handOver(tx: Store, winner: Domain, now: Date): Promise<void> {
    for (const claim of await tx.findClaims(winner.name)) {
      if (claim.id === winner.id || (claim.status !== 'verified' && claim.status !== 'active')) continue;
      const moved = await tx.updateDomain(claim.id, {
        status: 'moved',
        nextCheckAt: null,
        updatedAt: iso(now),
      });
      await tx.deleteJob(verifyJobKey(claim.id));
      await tx.deleteJob(reverifyJobKey(claim.id));
      if (moved) await this.hooks.onEvent?.(tx, moved, 'domain.moved', now);
    }
  }
}
