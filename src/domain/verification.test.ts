import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import type { DnsError, OwnershipCheck } from '../dns/checks.js';
import type { Domain, DomainStatus } from '../store/store.js';
import { addSeconds, iso } from './clock.js';
import {
  type CheckOutcome,
  type Decision,
  decide,
  pollDelaySeconds,
  REVERIFY_JOB,
  VERIFY_JOB,
} from './verification.js';

/**
 * decide(): what one check of a domain changes, and when the next check runs. Pure, so every
 * status against every answer DNS can give is asked here, with the shipped settings (a 72 h
 * deadline, re-verification every 6 h).
 */
const settings = loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1' });
const NOW = new Date('2026-05-04T12:00:00.000Z');
const ago = (seconds: number) => iso(addSeconds(NOW, -seconds));

function domain(status: DomainStatus, fields: Partial<Domain> = {}): Domain {
  const proven = status === 'verified' || status === 'active';
  return {
    id: 'dom_test',
    appId: 'app_test',
    orgId: 'org_test',
    name: 'shop.acme.test',
    status,
    isPrimary: false,
    verificationToken: 'token',
    createdAt: ago(86_400),
    updatedAt: ago(600),
    verifiedAt: proven ? ago(600) : null,
    verifyingSince: status === 'pending' ? null : ago(600),
    lastCheckedAt: ago(600),
    nextCheckAt: null,
    verificationErrors: [],
    routingObserved: [],
    // An active domain was last seen routed by DNS.
    routingVia: status === 'active' ? 'dns' : null,
    failureStreak: 0,
    serving: null,
    ...fields,
  };
}

/** What DNS can say of one of the two checks: right, definitely wrong, or nothing. */
type Answer = 'ok' | 'wrong' | 'silent';
const ANSWERS: readonly Answer[] = ['ok', 'wrong', 'silent'];

const error = (answer: Answer, wrong: DnsError['code']): DnsError[] =>
  answer === 'ok' ? [] : [{ code: answer === 'wrong' ? wrong : 'timeout', message: `${answer}` }];

function outcome(ownership: Answer, routing: Answer): CheckOutcome {
  const own: OwnershipCheck = {
    ok: ownership === 'ok',
    definitive: ownership !== 'silent',
    observed: ownership === 'ok' ? ['mixpeek-site-verification=token'] : [],
    errors: error(ownership, 'txt_not_found'),
  };
  const route: CheckOutcome['routing'] = {
    ok: routing === 'ok',
    via: routing === 'ok' ? 'dns' : null,
    definitive: routing !== 'silent',
    configured: ['CNAME cname.apps.example.net'],
    observed: routing === 'ok' ? ['CNAME cname.apps.example.net'] : [],
    errors: error(routing, 'cname_mismatch'),
  };
  return { ownership: own, routing: route };
}

/** What a person reads off a decision: where the domain stands afterwards, what is announced, what comes next. */
function summary(before: Domain, decision: Decision) {
  const next = decision.next;
  return {
    status: decision.patch.status ?? before.status,
    streak: decision.patch.failureStreak ?? before.failureStreak,
    event: decision.event ?? null,
    next: next ? `${next.kind} in ${(next.runAt.getTime() - NOW.getTime()) / 1000}s` : null,
    certificate: decision.readyForCertificate,
    tookOwnership: decision.tookOwnership,
    ...(decision.routingChanged ? { routingChanged: true } : {}),
  };
}

const check = (before: Domain, own: Answer, routing: Answer, requested = false) =>
  summary(before, decide(before, outcome(own, routing), NOW, settings, { requested }));

const POLL = (seconds: number) => `${VERIFY_JOB} in ${seconds}s`;
const RECHECK = (seconds: number) => `${REVERIFY_JOB} in ${seconds}s`;
const SIX_HOURS = 6 * 3600;
/** A live domain's next look after a failed or unanswered check. */
const SOON = 600;

describe('the poll schedule of a verifying domain', () => {
  it.each([
    [0, 15],
    [299, 15],
    [300, 60],
    [1799, 60],
    [1800, 300],
    [7199, 300],
    [7200, 900],
    [43_199, 900],
    [43_200, 3600],
    [71 * 3600, 3600],
  ])('%i s after verification started, checks again in %i s', (elapsed, interval) => {
    expect(pollDelaySeconds(elapsed)).toBe(interval);
  });

  it('polls a verifying domain by the time since verification started, not since the last check', () => {
    for (const [elapsed, interval] of [
      [60, 15],
      [600, 60],
      [3600, 300],
      [6 * 3600, 900],
      [24 * 3600, 3600],
    ] as const) {
      const before = domain('verifying', { verifyingSince: ago(elapsed), lastCheckedAt: ago(1) });
      expect(check(before, 'wrong', 'wrong').next, `${elapsed} s in`).toBe(POLL(interval));
    }
  });
});

describe('decide() on a verifying domain', () => {
  const verifying = domain('verifying');
  const proven = (routing: Answer) => ({
    status: 'verified',
    streak: 0,
    event: 'domain.verified',
    // Routed: the regular re-verification; not yet: routing is polled from the start of the schedule.
    next: routing === 'ok' ? RECHECK(SIX_HOURS) : RECHECK(15),
    certificate: routing === 'ok',
    tookOwnership: true,
  });
  const waiting = {
    status: 'verifying',
    streak: 0,
    event: null,
    next: POLL(60),
    certificate: false,
    tookOwnership: false,
  };

  it.each(ANSWERS)('ownership found, routing %s: verified, and it takes the name', (routing) => {
    expect(check(verifying, 'ok', routing)).toEqual(proven(routing));
  });

  it.each(ANSWERS.flatMap((routing) => [['wrong', routing] as const, ['silent', routing] as const]))(
    'ownership %s, routing %s: still verifying, polled again',
    (own, routing) => {
      expect(check(verifying, own, routing)).toEqual(waiting);
    },
  );

  it('records when ownership was proven', () => {
    const decision = decide(verifying, outcome('ok', 'ok'), NOW, settings);
    expect(decision.patch.verifiedAt).toBe(iso(NOW));
  });

  it('fails at the deadline (72 h) when ownership is still not found, whatever DNS answered', () => {
    const late = domain('verifying', { verifyingSince: ago(72 * 3600) });
    for (const own of ['wrong', 'silent'] as const) {
      expect(check(late, own, 'ok')).toEqual({
        status: 'failed',
        streak: 0,
        event: 'domain.failed',
        next: null,
        certificate: false,
        tookOwnership: false,
      });
    }
    // One second earlier it is still polled, hourly by then.
    expect(check(domain('verifying', { verifyingSince: ago(72 * 3600 - 1) }), 'wrong', 'ok')).toEqual({
      ...waiting,
      next: POLL(3600),
    });
  });

  it('verifies a domain whose records appear at the deadline', () => {
    expect(check(domain('verifying', { verifyingSince: ago(80 * 3600) }), 'ok', 'ok')).toEqual(proven('ok'));
  });

  it('a requested check of a verifying domain is judged like a scheduled one', () => {
    for (const own of ANSWERS) {
      for (const routing of ANSWERS) {
        expect(check(verifying, own, routing, true)).toEqual(check(verifying, own, routing));
      }
    }
  });
});

describe('decide() on a live domain (verified or active), scheduled', () => {
  const ok = (status: DomainStatus, next: string, certificate: boolean) => ({
    status,
    streak: 0,
    event: null,
    next,
    certificate,
    tookOwnership: false,
  });
  const counted = (status: DomainStatus, streak: number) => ({
    status,
    streak,
    event: null,
    next: RECHECK(SOON),
    certificate: false,
    tookOwnership: false,
  });
  /** `domain.routing_changed` besides: an active domain's routing is no longer what DNS showed. */
  const changed = (summary: object) => ({ ...summary, routingChanged: true });
  const moved = {
    status: 'moved',
    streak: 3,
    event: 'domain.moved',
    next: null,
    certificate: false,
    tookOwnership: false,
  };

  // [ownership, routing, what a verified domain with 1 failure so far becomes, what an active one becomes]
  const table: [Answer, Answer, object, object][] = [
    ['ok', 'ok', ok('verified', RECHECK(SIX_HOURS), true), ok('active', RECHECK(SIX_HOURS), false)],
    // A verified domain waiting for its CNAME is not failing: routing is polled on the schedule,
    // counted from when ownership was proven (10 minutes ago: every minute).
    // An active domain's routing is reported, never counted: only its ownership record keeps it.
    ['ok', 'wrong', ok('verified', RECHECK(60), false), changed(ok('active', RECHECK(SIX_HOURS), false))],
    ['ok', 'silent', ok('verified', RECHECK(60), false), ok('active', RECHECK(SIX_HOURS), false)],
    ['wrong', 'ok', counted('verified', 2), counted('active', 2)],
    ['wrong', 'wrong', counted('verified', 2), changed(counted('active', 2))],
    ['wrong', 'silent', counted('verified', 2), counted('active', 2)],
    ['silent', 'ok', counted('verified', 1), counted('active', 1)],
    ['silent', 'wrong', counted('verified', 1), changed(counted('active', 1))],
    ['silent', 'silent', counted('verified', 1), counted('active', 1)],
  ];

  it.each(table)('ownership %s, routing %s', (own, routing, verified, active) => {
    expect(check(domain('verified', { failureStreak: 1 }), own, routing)).toEqual(verified);
    expect(check(domain('active', { failureStreak: 1 }), own, routing)).toEqual(active);
  });

  // The same answers after two failures in a row: a third counted one ends serving.
  const afterTwo: [Answer, Answer, object, object][] = [
    ['ok', 'ok', ok('verified', RECHECK(SIX_HOURS), true), ok('active', RECHECK(SIX_HOURS), false)],
    ['ok', 'wrong', ok('verified', RECHECK(60), false), changed(ok('active', RECHECK(SIX_HOURS), false))],
    ['ok', 'silent', ok('verified', RECHECK(60), false), ok('active', RECHECK(SIX_HOURS), false)],
    ['wrong', 'ok', moved, moved],
    ['wrong', 'wrong', moved, moved],
    ['wrong', 'silent', moved, moved],
    ['silent', 'ok', counted('verified', 2), counted('active', 2)],
    ['silent', 'wrong', counted('verified', 2), changed(counted('active', 2))],
    ['silent', 'silent', counted('verified', 2), counted('active', 2)],
  ];

  it.each(afterTwo)(
    'ownership %s, routing %s, after two failures in a row',
    (own, routing, verified, active) => {
      expect(check(domain('verified', { failureStreak: 2 }), own, routing)).toEqual(verified);
      expect(check(domain('active', { failureStreak: 2 }), own, routing)).toEqual(active);
    },
  );

  it('a failed scheduled check is repeated 10 minutes on, not at the time it was itself due', () => {
    for (const status of ['verified', 'active'] as const) {
      for (const [own, routing] of [
        ['wrong', 'ok'],
        ['silent', 'ok'],
      ] as const) {
        const due = domain(status, { nextCheckAt: ago(1) });
        expect(check(due, own, routing).next, `${status} ${own}`).toBe(RECHECK(SOON));
      }
    }
  });

  it('a verified domain without routing is polled by the time since ownership was proven', () => {
    for (const [elapsed, interval] of [
      [60, 15],
      [3600, 300],
      [24 * 3600, 3600],
    ] as const) {
      const before = domain('verified', { verifiedAt: ago(elapsed) });
      expect(check(before, 'ok', 'wrong').next, `${elapsed} s in`).toBe(RECHECK(interval));
    }
  });
});

describe('decide() on a live domain, on a check someone asked for', () => {
  it.each([
    ['verified', 'wrong', 'ok'],
    ['verified', 'silent', 'ok'],
    ['active', 'wrong', 'ok'],
    ['active', 'silent', 'silent'],
  ] as const)('%s, ownership %s, routing %s: recorded, never counted', (status, own, routing) => {
    const before = domain(status, { failureStreak: 2 });
    expect(check(before, own, routing, true)).toEqual({
      status,
      streak: 2,
      event: null,
      next: RECHECK(SOON),
      certificate: false,
      tookOwnership: false,
    });
    const decision = decide(before, outcome(own, routing), NOW, settings, { requested: true });
    expect(decision.patch.verificationErrors?.length).toBeGreaterThan(0);
  });

  it('keeps a scheduled re-check that comes sooner than 10 minutes', () => {
    const due = (seconds: number) => domain('active', { nextCheckAt: iso(addSeconds(NOW, seconds)) });
    expect(check(due(60), 'wrong', 'ok', true).next).toBe(RECHECK(60));
    expect(check(due(SIX_HOURS), 'wrong', 'ok', true).next).toBe(RECHECK(SOON));
  });

  it('clears a failure streak once the records are back', () => {
    expect(check(domain('active', { failureStreak: 2 }), 'ok', 'ok', true)).toEqual({
      status: 'active',
      streak: 0,
      event: null,
      next: RECHECK(SIX_HOURS),
      certificate: false,
      tookOwnership: false,
    });
    expect(check(domain('verified', { failureStreak: 2 }), 'ok', 'ok', true).certificate).toBe(true);
  });
});

describe('decide() on a domain no check watches', () => {
  it.each(['pending', 'failed', 'moved'] as const)(
    '%s: nothing changes but the time, nothing is scheduled',
    (status) => {
      for (const own of ANSWERS) {
        for (const routing of ANSWERS) {
          const decision = decide(domain(status), outcome(own, routing), NOW, settings);
          expect(decision).toEqual({
            patch: { updatedAt: iso(NOW), nextCheckAt: null },
            next: null,
            tookOwnership: false,
            readyForCertificate: false,
            routingChanged: false,
          });
        }
      }
    },
  );
});

describe('what decide() records of a check', () => {
  it.each(['verifying', 'verified', 'active'] as const)(
    '%s: the time, both checks’ errors and what routing showed',
    (status) => {
      const decision = decide(domain(status), outcome('silent', 'wrong'), NOW, settings);
      expect(decision.patch).toMatchObject({
        updatedAt: iso(NOW),
        lastCheckedAt: iso(NOW),
        verificationErrors: [
          { code: 'timeout', message: 'silent' },
          { code: 'cname_mismatch', message: 'wrong' },
        ],
        routingObserved: [],
        routingVia: null,
        nextCheckAt: decision.next ? iso(decision.next.runAt) : null,
      });
      const routed = decide(domain(status), outcome('ok', 'ok'), NOW, settings);
      expect(routed.patch).toMatchObject({
        verificationErrors: [],
        routingObserved: ['CNAME cname.apps.example.net'],
        routingVia: 'dns',
      });
      // A silent DNS tells nothing of the routing: what the last check saw is kept.
      expect(decide(domain(status), outcome('ok', 'silent'), NOW, settings).patch).not.toHaveProperty(
        'routingVia',
      );
      expect(routed.patch.nextCheckAt).toBe(iso(routed.next?.runAt ?? NOW));
    },
  );

  it('a domain that stops being watched has no next check recorded', () => {
    const moved = decide(domain('active', { failureStreak: 2 }), outcome('wrong', 'ok'), NOW, settings);
    expect(moved.patch.nextCheckAt).toBeNull();
  });
});
