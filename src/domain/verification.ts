import {
  checkDelegation,
  checkOwnership,
  checkRouting,
  type DelegationCheck,
  type OwnershipCheck,
  type RoutingCheck,
} from '../dns/checks.js';
import type { Resolvers } from '../dns/resolver.js';
import type { Domain, DomainPatch, RoutingVia, Store } from '../store/store.js';
import { addSeconds, type Clock, iso } from './clock.js';
import {
  type DnsSettings,
  delegationRecord,
  ownershipRecordName,
  routesByAddress,
  routingCheckName,
} from './dns-records.js';
import { isWildcard } from './hostname.js';
import { newId } from './ids.js';
import { type DomainEvent, isLive, onCheck, onHandOver, STATUS_TABLE } from './lifecycle.js';
import type { RoutingProver } from './routing-proof.js';

/**
 * Verification: proving a claim's ownership by DNS, then watching that the proof and the routing
 * stay in place for as long as the domain lives (docs/architecture.md, "Verification"). What a
 * check's findings do to the domain's status is lifecycle.ts's; when the next check runs is here.
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

export interface VerificationSettings extends DnsSettings {
  verifyDeadlineSeconds: number;
  reverifyIntervalSeconds: number;
}

export interface CheckOutcome {
  ownership: OwnershipCheck;
  /** DNS's answer, and how traffic reaches the platform: by DNS, through the customer's proxy, or not. */
  routing: RoutingCheck & { via: RoutingVia | null };
  /** The certificate delegation, when Portico answers DNS-01 (undefined otherwise). */
  delegation?: DelegationCheck;
}

/** What one check changes: pure, so every rule is tested without DNS or a database (verification.test.ts). */
export interface Decision {
  patch: DomainPatch;
  /** The next check of this domain, or null when it is no longer watched. */
  next: { kind: typeof VERIFY_JOB | typeof REVERIFY_JOB; runAt: Date } | null;
  event?: DomainEvent;
  /** Ownership was proven just now: other organizations' live claims on the name are `moved`. */
  tookOwnership: boolean;
  /** Ownership and routing hold and the domain has no certificate yet: time to issue one. */
  readyForCertificate: boolean;
  /** A served domain's routing changed since the last check: `domain.routing_changed`. */
  routingChanged: boolean;
}

export const VERIFY_JOB = 'domain:verify';
export const REVERIFY_JOB = 'domain:reverify';
export const verifyJobKey = (domainId: string) => `${VERIFY_JOB}:${domainId}`;
export const reverifyJobKey = (domainId: string) => `${REVERIFY_JOB}:${domainId}`;

/**
 * A check someone asked for (`verify` on a verified or active domain, see DomainService) rather
 * than one the schedule ran. It may clear failures but never adds one (CheckFindings.requested in
 * lifecycle.ts), and it never puts off a re-check the schedule already has.
 */
export interface CheckOptions {
  requested?: boolean;
}

/**
 * One check's result: the status part from lifecycle.ts's onCheck(), the next check from the
 * schedule above, and what was found, recorded as it is.
 */
export function decide(
  domain: Domain,
  outcome: CheckOutcome,
  now: Date,
  settings: VerificationSettings,
  { requested = false }: CheckOptions = {},
): Decision {
  const { ownership, routing, delegation } = outcome;
  const since = (start: string | null) => secondsSince(start, now);
  const transition = onCheck(
    domain,
    {
      ownership,
      routing,
      delegation,
      deadlinePassed: since(domain.verifyingSince) >= settings.verifyDeadlineSeconds,
      requested,
    },
    iso(now),
  );
  if (!transition) {
    return {
      patch: { updatedAt: iso(now), nextCheckAt: null },
      next: null,
      tookOwnership: false,
      readyForCertificate: false,
      routingChanged: false,
    };
  }
  const after = { ...domain, ...transition.patch };
  const next = nextCheck(after, transition.trouble, routing.ok, now, settings, requested);
  return {
    patch: {
      updatedAt: iso(now),
      lastCheckedAt: iso(now),
      // A missing delegation is worth a word only while nothing else can get the certificate
      // (for a wildcard, nothing else ever can).
      verificationErrors: [
        ...ownership.errors,
        ...routing.errors,
        ...(delegation && !delegation.ok && (!routing.ok || isWildcard(domain.name))
          ? delegation.errors
          : []),
      ],
      routingObserved: routing.observed,
      // What a silent DNS could not tell is kept as the last check saw it.
      ...(routing.definitive ? { routingVia: routing.via } : {}),
      ...transition.patch,
      nextCheckAt: next ? iso(next.runAt) : null,
    },
    next,
    ...(transition.event ? { event: transition.event } : {}),
    tookOwnership: transition.tookOwnership,
    readyForCertificate: transition.readyForCertificate,
    routingChanged: transition.routingChanged,
  };
}

/** Seconds from `start` to `now`; 0 when there is no start. */
const secondsSince = (start: string | null, now: Date) =>
  start === null ? 0 : (now.getTime() - Date.parse(start)) / 1000;

/** When a domain in its new status is checked next, or null when no check watches that status. */
function nextCheck(
  domain: Domain,
  trouble: 'lost' | 'unanswered' | null,
  routed: boolean,
  now: Date,
  settings: VerificationSettings,
  requested: boolean,
): Decision['next'] {
  const traits = STATUS_TABLE[domain.status];
  const after = (seconds: number) => addSeconds(now, seconds);
  const since = (start: string | null) => secondsSince(start, now);
  if (!traits.checked) return null;
  // Polling: by the time since verification started.
  if (!traits.live) return { kind: VERIFY_JOB, runAt: after(pollDelaySeconds(since(domain.verifyingSince))) };
  if (trouble) {
    // A failed or unanswered check is looked at again soon; one asked for never later than the
    // re-check already due.
    const soon = after(RECHECK_AFTER_FAILURE_SECONDS);
    const due = requested && domain.nextCheckAt ? new Date(domain.nextCheckAt) : null;
    return { kind: REVERIFY_JOB, runAt: due && due < soon ? due : soon };
  }
  // A verified domain waiting for its CNAME: routing is polled, by the time since it was proven.
  if (!traits.served && !routed) {
    return { kind: REVERIFY_JOB, runAt: after(pollDelaySeconds(since(domain.verifiedAt))) };
  }
  return { kind: REVERIFY_JOB, runAt: after(settings.reverifyIntervalSeconds) };
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
    /** Proves routing through a customer's proxy when DNS does not show it; without one, DNS decides. */
    private readonly prover?: Pick<RoutingProver, 'prove'>,
  ) {}

  /**
   * Asks DNS about the domain: its ownership record and its routing; and, for a live claim whose
   * DNS points elsewhere (a CDN's addresses, a CNAME to a proxy), asks its proxy whether requests
   * reach the edge (routing-proof.ts). No state changes.
   */
  async inspect(domain: Domain, signal?: AbortSignal): Promise<CheckOutcome> {
    const s = this.settings;
    const delegation = delegationRecord(domain.orgId, domain.name, s);
    // A wildcard's routing is asked at a fresh random name under it, which only its own record answers.
    const wildcard = isWildcard(domain.name);
    const byAddress = wildcard || routesByAddress(domain.name, s);
    const routedName = routingCheckName(domain.name);
    const [ownership, dns, delegated] = await Promise.all([
      checkOwnership(this.resolvers.ownership, {
        name: ownershipRecordName(s.verifyRecordName, domain.name),
        valuePrefix: s.verifyValuePrefix,
        token: domain.verificationToken,
        signal,
      }),
      checkRouting(this.resolvers.routing, {
        domain: routedName,
        ...(wildcard ? { recordName: domain.name } : {}),
        cnameTarget: s.cnameTarget,
        // Only apexes are asked to use addresses (dns-records.ts); a subdomain must CNAME. A
        // wildcard is asked for a CNAME, and its names may also be edge addresses (`*.acme.com A`).
        edgeIPv4: byAddress ? s.edgeIpv4 : [],
        edgeIPv6: byAddress ? s.edgeIpv6 : [],
        signal,
      }),
      delegation &&
        checkDelegation(this.resolvers.routing, { name: delegation.name, target: delegation.value, signal }),
    ]);
    const routing = await this.throughProxy(domain, routedName, dns, signal);
    return { ownership, routing, ...(delegated ? { delegation: delegated } : {}) };
  }

  /**
   * DNS's routing answer, or, when DNS answered with somewhere else, the proof through the proxy
   * there. Only for live claims: the edge answers proofs for those alone, and a claim not yet
   * proven has nothing to route. A silent DNS is left silent (nothing to send a request to).
   */
  private async throughProxy(
    domain: Domain,
    hostname: string,
    dns: RoutingCheck,
    signal: AbortSignal | undefined,
  ): Promise<CheckOutcome['routing']> {
    if (dns.ok) return { ...dns, via: 'dns' };
    if (!this.prover || !dns.definitive || !isLive(domain.status)) return { ...dns, via: null };
    const proof = await this.prover.prove({ id: domain.id, name: hostname }, signal);
    if (proof.ok) return { ...dns, ok: true, errors: [], via: 'proxy' };
    // DNS's own message says what to change; the proxy's failure says why it was not enough.
    const errors = dns.errors.map((error, i) =>
      i === dns.errors.length - 1 ? { ...error, message: `${error.message}; ${proof.reason}` } : error,
    );
    return { ...dns, errors, via: null };
  }

  /**
   * Checks the domain and records what was found, in one transaction that re-reads the domain
   * first: a domain removed or re-requested while DNS was being asked is judged as it is now.
   * Answers the domain as stored afterwards, or undefined when it no longer exists.
   */
  async check(
    domainId: string,
    signal?: AbortSignal,
    options: CheckOptions = {},
  ): Promise<Domain | undefined> {
    const before = await this.store.findDomainById(domainId);
    // A domain in a status no check watches is left alone.
    if (!before || !STATUS_TABLE[before.status].checked) return before;
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
      // Checks that may change which claim on the name is live run one at a time: two claims
      // proven at once would otherwise each find the other not yet live, and both stay live.
      await tx.lockDomainName(before.name);
      const domain = await tx.findDomainById(domainId);
      if (
        !domain ||
        domain.status !== before.status ||
        domain.verificationToken !== before.verificationToken
      ) {
        return domain;
      }
      const decision = decide(domain, outcome, now, this.settings, options);
      // The other live claims leave before this one becomes live: the store refuses two at once.
      const moved = decision.tookOwnership ? await this.handOver(tx, domain, now) : [];
      const updated = (await tx.updateDomain(domain.id, decision.patch)) ?? domain;
      await this.scheduleNext(tx, updated, decision, now);
      if (decision.event) await this.hooks.onEvent?.(tx, updated, decision.event, now);
      if (decision.routingChanged) await this.hooks.onEvent?.(tx, updated, 'domain.routing_changed', now);
      for (const { claim, event } of moved) await this.hooks.onEvent?.(tx, claim, event, now);
      if (decision.readyForCertificate) await this.hooks.onReadyForCertificate?.(tx, updated, now);
      return updated;
    });
  }

  /**
   * Runs the domain's queued check now, in the caller's process, because someone asked for it:
   * `kind` names the job, the polling of a `verifying` domain or the re-verification of a live
   * one. Only when no worker holds that job: the lease keeps one domain from being checked by two
   * processes at once. Answers the domain after the check, or undefined when a worker is checking
   * it at this moment (or no check is queued).
   */
  async checkNow(
    domainId: string,
    holder: string,
    signal?: AbortSignal,
    kind: typeof VERIFY_JOB | typeof REVERIFY_JOB = VERIFY_JOB,
  ): Promise<Domain | undefined> {
    const key = kind === VERIFY_JOB ? verifyJobKey(domainId) : reverifyJobKey(domainId);
    const job = await this.store.claimJob(key, holder, iso(this.clock.now()));
    if (!job) return undefined;
    try {
      return await this.check(domainId, signal, { requested: true });
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
   * claim on the name is `moved` in the same transaction, so exactly one claim is ever live (the
   * caller holds the name's lock, so a claim proven at the same moment waits and then moves this
   * one). Answers the claims moved, with their events.
   */
  private async handOver(
    tx: Store,
    winner: Domain,
    now: Date,
  ): Promise<{ claim: Domain; event: DomainEvent }[]> {
    const moved: { claim: Domain; event: DomainEvent }[] = [];
    for (const claim of await tx.findClaims(winner.name)) {
      const transition = claim.id === winner.id ? null : onHandOver(claim);
      if (!transition) continue;
      const updated = await tx.updateDomain(claim.id, {
        ...transition.patch,
        nextCheckAt: null,
        updatedAt: iso(now),
      });
      await tx.deleteJob(verifyJobKey(claim.id));
      await tx.deleteJob(reverifyJobKey(claim.id));
      if (updated) moved.push({ claim: updated, event: transition.event });
    }
    return moved;
  }
}
