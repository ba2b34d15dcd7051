import type { Domain, RoutingVia } from '../store/store.js';
import { DOMAIN_STATUSES, type DomainStatus } from '../store/store.js';
import { isWildcard } from './hostname.js';

/**
 * The domain status machine (docs/architecture.md draws it), whole: every status, what each means
 * to the rest of Portico (STATUS_TABLE), and every transition. Pure functions only: callers load a
 * domain, ask here what may happen, and store the result in one transaction. When a check runs
 * again is not a status rule: verification.ts schedules it from what these functions answer.
 *
 *   pending --verify--> verifying --TXT found--> verified --certificate stored--> active
 *                         |  deadline passed         |                                |
 *                         v                          +---------------+----------------+
 *                       failed                                       |  3 definitive failures in a row,
 *                                                                    v  (of the ownership record),
 *                                                                  moved   or another organization proves the name
 *
 *   Routing never moves a domain: a served one whose traffic stops reaching the platform by DNS or
 *   through its own proxy is reported (domain.routing_changed) and kept (docs/security.md).
 *
 *   verify on failed or moved starts over (verifying); on verified or active it re-checks at once.
 */

/** What a status means to the parts that ask about it (API, CLI, dashboard, edge, checks). */
export interface StatusTraits {
  /**
   * Ownership proven: the claim that holds the name, at most one per name (the unique index
   * `domains_one_live_claim`, migration 0008, lists these statuses). Live claims are re-verified,
   * count their failures (`reverify_failures`) and are `moved` when another organization proves
   * the name.
   */
  live: boolean;
  /** The edge serves the name (and a change of its routing is announced). */
  served: boolean;
  /** Checks watch it: polled while verifying, re-verified while live. Others change only on request. */
  checked: boolean;
  /** Portico is working on it (DNS polling, routing, the certificate): worth reading again every few seconds. */
  polled: boolean;
  /** `verify` (re)starts polling; on the others it re-checks at once instead and keeps the status. */
  verifiable: boolean;
  /** Where a verification ends, served or not: `portico domains verify --wait` stops here. */
  settled: boolean;
}

/** The one table of statuses: whatever asks what a status means reads it (the dashboard as /ui/statuses.js). */
export const STATUS_TABLE: Readonly<Record<DomainStatus, Readonly<StatusTraits>>> = {
  pending: { live: false, served: false, checked: false, polled: false, verifiable: true, settled: false },
  verifying: { live: false, served: false, checked: true, polled: true, verifiable: true, settled: false },
  verified: { live: true, served: false, checked: true, polled: true, verifiable: false, settled: false },
  active: { live: true, served: true, checked: true, polled: false, verifiable: false, settled: true },
  failed: { live: false, served: false, checked: false, polled: false, verifiable: true, settled: true },
  moved: { live: false, served: false, checked: false, polled: false, verifiable: true, settled: true },
};

/** The statuses that have `trait`, in DOMAIN_STATUSES order. */
export const statusesWhere = (trait: keyof StatusTraits): readonly DomainStatus[] =>
  DOMAIN_STATUSES.filter((status) => STATUS_TABLE[status][trait]);

/** The claim holds the name (see StatusTraits.live). */
export const isLive = (status: DomainStatus): boolean => STATUS_TABLE[status].live;
/** The edge serves it. */
export const SERVED_STATUSES = statusesWhere('served');
/** The claim holds the name: the edge answers its routing proofs (routing-proof.ts). */
export const LIVE_STATUSES = statusesWhere('live');

/**
 * The traits of a status named by someone else (an API answer read by the CLI), or undefined for a
 * status this version does not know.
 */
export function traitsOf(status: string): Readonly<StatusTraits> | undefined {
  return Object.hasOwn(STATUS_TABLE, status) ? STATUS_TABLE[status as DomainStatus] : undefined;
}

/** The events transitions announce (as webhooks, to the domain's organization). */
export type DomainEvent =
  | 'domain.verified'
  | 'domain.failed'
  | 'domain.moved'
  | 'domain.active'
  | 'domain.routing_changed';

/** The fields the status machine owns; the rest of a domain (check results, schedule) is the callers'. */
export type StatusFields = Pick<Domain, 'status' | 'verifiedAt' | 'verifyingSince' | 'failureStreak'>;

/** One transition: the status fields to store (absent ones are kept) and what to announce. */
export interface Transition<E extends DomainEvent = DomainEvent> {
  patch: Partial<StatusFields>;
  event?: E;
}

/** Definitive failures of the ownership record in a row that make a live domain `moved`. */
export const MOVED_AFTER_FAILURES = 3;

/** A new claim: `pending` until someone asks for verification. */
export const NEW_CLAIM: StatusFields = {
  status: 'pending',
  verifiedAt: null,
  verifyingSince: null,
  failureStreak: 0,
};

/**
 * `POST .../verify`: a verifiable domain starts (or goes on) verifying, with a clean failure
 * streak and the deadline counted from the request that started it (asking again while verifying
 * keeps it); null for a live one, which keeps its status (its re-check runs instead, see
 * DomainService.requestVerification).
 */
export function onVerifyRequest(
  domain: Pick<Domain, 'status' | 'verifyingSince'>,
  now: string,
): Transition<never> | null {
  if (!STATUS_TABLE[domain.status].verifiable) return null;
  const verifyingSince = domain.status === 'verifying' ? domain.verifyingSince : now;
  return { patch: { status: 'verifying', verifyingSince, failureStreak: 0 } };
}

/** One DNS answer as the status machine weighs it: right, or wrong and whether DNS said so. */
export interface Answer {
  ok: boolean;
  /** True when DNS answered: only answers count against a domain, silence (timeouts, SERVFAIL) never. */
  definitive: boolean;
}

/** The routing answer: how traffic reaches the platform, when it does (null exactly when not ok). */
export interface RoutingAnswer extends Answer {
  via: RoutingVia | null;
}

export interface CheckFindings {
  ownership: Answer;
  routing: RoutingAnswer;
  /**
   * The certificate delegation (`_acme-challenge` CNAME to Portico's challenge zone), where there is
   * one: in place, it gets the certificate over DNS-01 without waiting for routing.
   */
  delegation?: Answer;
  /** A verifying domain's time is up (PORTICO_VERIFY_DEADLINE_SECONDS). */
  deadlinePassed: boolean;
  /**
   * Someone asked for this check rather than the schedule running it: it may clear failures but
   * never adds one, so a customer pressing verify during a DNS edit cannot end serving in seconds
   * (the schedule's spacing of failures rides the edit out).
   */
  requested: boolean;
}

export interface CheckTransition extends Transition<'domain.verified' | 'domain.failed' | 'domain.moved'> {
  /**
   * A live domain's check failed (`lost`: DNS answered wrongly; `unanswered`: DNS was silent),
   * counted or not; null when it passed, and for a domain not yet live.
   */
  trouble: 'lost' | 'unanswered' | null;
  /** Ownership was proven just now: other organizations' live claims on the name are handed over. */
  tookOwnership: boolean;
  /** Ownership holds, and routing or the delegation, on a domain not served yet: time for its certificate. */
  readyForCertificate: boolean;
  /**
   * A served domain's routing is not what its last check saw (reached the platform or not, by DNS
   * or by proxy): announced as `domain.routing_changed`, which changes nothing else.
   */
  routingChanged: boolean;
}

/**
 * What a check's findings do to a domain's status, or null for a status no check acts on. A
 * verifying domain is verified once its ownership record is found (routing may follow later) and
 * failed at the deadline; a live one must keep its ownership record, or three definitive failures
 * in a row make it moved. Routing decides only when a claim not served yet gets its certificate:
 * an active domain whose DNS points at the customer's CDN is still the customer's, and still
 * served (the dangling-CNAME defence is the ownership record: docs/security.md).
 */
export function onCheck(domain: Domain, findings: CheckFindings, now: string): CheckTransition | null {
  const { ownership, routing } = findings;
  // What a certificate needs besides the ownership proof: the CA reaching the edge, or the
  // delegation. A wildcard's can only be had over DNS-01 (RFC 8555 7.1.3), so only by the delegation.
  const certifiable = findings.delegation?.ok === true || (routing.ok && !isWildcard(domain.name));
  const result = (patch: Partial<StatusFields>, extra: Partial<CheckTransition> = {}): CheckTransition => ({
    patch,
    trouble: null,
    tookOwnership: false,
    readyForCertificate: false,
    routingChanged: false,
    ...extra,
  });
  switch (domain.status) {
    case 'verifying':
      if (ownership.ok) {
        return result(
          { status: 'verified', verifiedAt: now, failureStreak: 0 },
          { event: 'domain.verified', tookOwnership: true, readyForCertificate: certifiable },
        );
      }
      return findings.deadlinePassed ? result({ status: 'failed' }, { event: 'domain.failed' }) : result({});
    case 'verified':
    case 'active': {
      const served = STATUS_TABLE[domain.status].served;
      // Only a definite answer is news, and only against what an earlier check saw.
      const routingChanged =
        served && routing.definitive && domain.lastCheckedAt !== null && domain.routingVia !== routing.via;
      const trouble = ownership.ok ? null : ownership.definitive ? 'lost' : 'unanswered';
      // Recorded, not counted: the schedule's next check counts what it finds.
      if (trouble && findings.requested) return result({}, { trouble, routingChanged });
      if (trouble === 'lost') {
        const failureStreak = domain.failureStreak + 1;
        return failureStreak >= MOVED_AFTER_FAILURES
          ? result({ status: 'moved', failureStreak }, { event: 'domain.moved', trouble })
          : result({ failureStreak }, { trouble, routingChanged });
      }
      // DNS did not answer: nothing is held against the domain.
      if (trouble) return result({}, { trouble, routingChanged });
      return result({ failureStreak: 0 }, { readyForCertificate: !served && certifiable, routingChanged });
    }
    default:
      // pending, failed, moved: nothing watches these until someone asks to verify again.
      return null;
  }
}

/**
 * Another organization proved control of the name: the most recent proof wins, so this claim, if
 * live, is moved (null when it is not live and keeps its status).
 */
export function onHandOver(claim: Pick<Domain, 'status'>): Required<Transition<'domain.moved'>> | null {
  return isLive(claim.status) ? { patch: { status: 'moved' }, event: 'domain.moved' } : null;
}

/**
 * A certificate for the domain's name was stored: a verified domain becomes active (served); any
 * other keeps its status (an active one's renewal, a claim no longer live).
 */
export function onCertificate(domain: Pick<Domain, 'status'>): Required<Transition<'domain.active'>> | null {
  return domain.status === 'verified' ? { patch: { status: 'active' }, event: 'domain.active' } : null;
}
