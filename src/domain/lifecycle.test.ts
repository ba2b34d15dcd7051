import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import { up as oneLiveClaim } from '../store/migrations/0008-one-live-claim.js';
import { DOMAIN_STATUSES, type Domain, type DomainStatus } from '../store/store.js';
import {
  type CheckTransition,
  isLive,
  MOVED_AFTER_FAILURES,
  NEW_CLAIM,
  onCertificate,
  onCheck,
  onHandOver,
  onVerifyRequest,
  type RoutingAnswer,
  SERVED_STATUSES,
  STATUS_TABLE,
  statusesWhere,
  traitsOf,
} from './lifecycle.js';

/** Every transition of a domain's status, table by table; pure, so no DNS and no database. */

const NOW = '2026-05-04T12:00:00.000Z';
const EARLIER = '2026-05-04T11:00:00.000Z';

function domain(status: DomainStatus, failureStreak = 0): Domain {
  return {
    id: 'dom_test',
    appId: 'app_test',
    orgId: 'org_test',
    name: 'shop.acme.test',
    status,
    isPrimary: false,
    verificationToken: 'token',
    createdAt: EARLIER,
    updatedAt: EARLIER,
    verifiedAt: isLive(status) ? EARLIER : null,
    verifyingSince: status === 'pending' ? null : EARLIER,
    lastCheckedAt: EARLIER,
    nextCheckAt: null,
    verificationErrors: [],
    routingObserved: [],
    // An active domain was last seen routed by DNS.
    routingVia: status === 'active' ? 'dns' : null,
    failureStreak,
    serving: null,
  };
}

describe('the table of statuses', () => {
  it('names every status, and nothing else', () => {
    expect(Object.keys(STATUS_TABLE).sort()).toEqual([...DOMAIN_STATUSES].sort());
  });

  it.each([
    ['live', ['verified', 'active']],
    ['served', ['active']],
    ['checked', ['verifying', 'verified', 'active']],
    ['polled', ['verifying', 'verified']],
    ['verifiable', ['pending', 'verifying', 'failed', 'moved']],
    ['settled', ['active', 'failed', 'moved']],
  ] as const)('%s: %j', (trait, statuses) => {
    expect(statusesWhere(trait)).toEqual(statuses);
  });

  it('holds together: served claims are live, live ones checked, and verify restarts exactly the others', () => {
    for (const status of DOMAIN_STATUSES) {
      const traits = STATUS_TABLE[status];
      if (traits.served) expect(traits.live, status).toBe(true);
      if (traits.live || traits.polled) expect(traits.checked, status).toBe(true);
      expect(traits.verifiable, status).toBe(!traits.live);
      expect(isLive(status), status).toBe(traits.live);
    }
    expect(SERVED_STATUSES).toEqual(statusesWhere('served'));
  });

  it('knows the statuses an API answer may name, and no others', () => {
    expect(traitsOf('active')).toBe(STATUS_TABLE.active);
    for (const unknown of ['archived', 'ACTIVE', '', 'constructor', 'toString', '__proto__']) {
      expect(traitsOf(unknown), unknown).toBeUndefined();
    }
  });

  it("lists as live the statuses migration 0008's unique index and clean-up were written with", async () => {
    // The migration's SQL as it runs on SQLite, compiled without a database.
    const statements: string[] = [];
    const db = new Kysely<unknown>({
      dialect: {
        createAdapter: () => new SqliteAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (kysely) => new SqliteIntrospector(kysely),
        createQueryCompiler: () => new SqliteQueryCompiler(),
      },
      log: (event) => {
        statements.push(event.query.sql);
      },
    });
    await oneLiveClaim(db);
    const lists = statements.flatMap((statement) =>
      [...statement.matchAll(/"?status"? in \(([^)]*)\)/g)].map((match) =>
        (match[1] ?? '').split(',').map((value) => value.trim().replace(/^'|'$/g, '')),
      ),
    );
    expect(statements.some((statement) => statement.includes('domains_one_live_claim'))).toBe(true);
    // The clean-up's two lists and the index's.
    expect(lists).toHaveLength(3);
    for (const list of lists) expect(list.sort()).toEqual([...statusesWhere('live')].sort());
  });
});

describe('a new claim', () => {
  it('is pending, unproven, with no failures', () => {
    expect(NEW_CLAIM).toEqual({
      status: 'pending',
      verifiedAt: null,
      verifyingSince: null,
      failureStreak: 0,
    });
  });
});

describe('verify requested', () => {
  it.each([
    ['pending', { status: 'verifying', verifyingSince: NOW, failureStreak: 0 }],
    // Asking again while verifying keeps the deadline where it was.
    ['verifying', { status: 'verifying', verifyingSince: EARLIER, failureStreak: 0 }],
    ['failed', { status: 'verifying', verifyingSince: NOW, failureStreak: 0 }],
    ['moved', { status: 'verifying', verifyingSince: NOW, failureStreak: 0 }],
  ] as const)('%s starts (or goes on) verifying', (status, patch) => {
    expect(onVerifyRequest(domain(status, 2), NOW)).toEqual({ patch });
  });

  it.each(['verified', 'active'] as const)('%s keeps its status (it is re-checked instead)', (status) => {
    expect(onVerifyRequest(domain(status, 2), NOW)).toBeNull();
  });
});

describe('a check', () => {
  // Each answer as ownership (an Answer) or routing (a RoutingAnswer: `via` is ignored for ownership).
  const ok: RoutingAnswer = { ok: true, definitive: true, via: 'dns' };
  const proxied: RoutingAnswer = { ok: true, definitive: true, via: 'proxy' };
  const wrong: RoutingAnswer = { ok: false, definitive: true, via: null };
  const silent: RoutingAnswer = { ok: false, definitive: false, via: null };
  const answers = { ok, proxied, wrong, silent };
  type Said = keyof typeof answers;

  const none = { trouble: null, tookOwnership: false, readyForCertificate: false, routingChanged: false };
  const change = (patch: CheckTransition['patch'], extra: Partial<CheckTransition> = {}) => ({
    patch,
    ...none,
    ...extra,
  });
  const verified = (ready: boolean) =>
    change(
      { status: 'verified', verifiedAt: NOW, failureStreak: 0 },
      { event: 'domain.verified', tookOwnership: true, readyForCertificate: ready },
    );
  const moved = change(
    { status: 'moved', failureStreak: MOVED_AFTER_FAILURES },
    { event: 'domain.moved', trouble: 'lost' },
  );

  // [status, failures so far, ownership, routing, deadline passed, requested, transition]
  const table: [DomainStatus, number, Said, Said, boolean, boolean, object | null][] = [
    ['verifying', 0, 'ok', 'ok', false, false, verified(true)],
    ['verifying', 0, 'ok', 'wrong', false, false, verified(false)],
    ['verifying', 0, 'ok', 'silent', false, false, verified(false)],
    ['verifying', 0, 'ok', 'ok', true, false, verified(true)],
    ['verifying', 0, 'wrong', 'ok', false, false, change({})],
    ['verifying', 0, 'silent', 'ok', false, false, change({})],
    ['verifying', 0, 'wrong', 'ok', true, false, change({ status: 'failed' }, { event: 'domain.failed' })],
    [
      'verifying',
      0,
      'silent',
      'wrong',
      true,
      false,
      change({ status: 'failed' }, { event: 'domain.failed' }),
    ],
    ['verifying', 0, 'wrong', 'ok', true, true, change({ status: 'failed' }, { event: 'domain.failed' })],

    // A verified domain answers for its ownership record only: it may still wait for routing.
    ['verified', 1, 'ok', 'ok', false, false, change({ failureStreak: 0 }, { readyForCertificate: true })],
    ['verified', 1, 'ok', 'wrong', false, false, change({ failureStreak: 0 })],
    ['verified', 1, 'ok', 'silent', false, false, change({ failureStreak: 0 })],
    ['verified', 1, 'wrong', 'ok', false, false, change({ failureStreak: 2 }, { trouble: 'lost' })],
    ['verified', 1, 'silent', 'wrong', false, false, change({}, { trouble: 'unanswered' })],
    ['verified', 2, 'wrong', 'ok', false, false, moved],
    ['verified', 2, 'wrong', 'ok', false, true, change({}, { trouble: 'lost' })],
    ['verified', 2, 'ok', 'ok', false, true, change({ failureStreak: 0 }, { readyForCertificate: true })],

    // An active domain answers for its ownership record; its routing is reported when it changes
    // (it was last seen by DNS), never counted: a CDN in front of it does not take it down.
    ['active', 1, 'ok', 'ok', false, false, change({ failureStreak: 0 })],
    ['active', 1, 'ok', 'wrong', false, false, change({ failureStreak: 0 }, { routingChanged: true })],
    ['active', 1, 'ok', 'proxied', false, false, change({ failureStreak: 0 }, { routingChanged: true })],
    ['active', 1, 'wrong', 'ok', false, false, change({ failureStreak: 2 }, { trouble: 'lost' })],
    [
      'active',
      1,
      'wrong',
      'proxied',
      false,
      false,
      change({ failureStreak: 2 }, { trouble: 'lost', routingChanged: true }),
    ],
    // A silent routing answer says nothing new.
    ['active', 1, 'ok', 'silent', false, false, change({ failureStreak: 0 })],
    ['active', 1, 'silent', 'silent', false, false, change({}, { trouble: 'unanswered' })],
    [
      'active',
      1,
      'silent',
      'wrong',
      false,
      false,
      change({}, { trouble: 'unanswered', routingChanged: true }),
    ],
    ['active', 2, 'ok', 'wrong', false, false, change({ failureStreak: 0 }, { routingChanged: true })],
    ['active', 2, 'wrong', 'ok', false, false, moved],
    ['active', 2, 'wrong', 'wrong', false, false, moved],
    ['active', 2, 'silent', 'silent', false, false, change({}, { trouble: 'unanswered' })],
    // Asked for: recorded, never counted, but it may clear the streak.
    ['active', 2, 'wrong', 'ok', false, true, change({}, { trouble: 'lost' })],
    ['active', 2, 'silent', 'ok', false, true, change({}, { trouble: 'unanswered' })],
    ['active', 2, 'ok', 'ok', false, true, change({ failureStreak: 0 })],
    ['active', 2, 'ok', 'wrong', false, true, change({ failureStreak: 0 }, { routingChanged: true })],

    // Nothing watches these: a check has no say.
    ['pending', 0, 'ok', 'ok', false, false, null],
    ['failed', 0, 'ok', 'ok', false, false, null],
    ['moved', 2, 'ok', 'ok', false, false, null],
    ['moved', 2, 'wrong', 'wrong', true, true, null],
  ];

  it.each(table)(
    '%s with %i failures, ownership %s, routing %s, deadline passed %s, requested %s',
    (status, streak, own, routing, deadlinePassed, requested, expected) => {
      const findings = { ownership: answers[own], routing: answers[routing], deadlinePassed, requested };
      expect(onCheck(domain(status, streak), findings, NOW)).toEqual(expected);
    },
  );

  it('orders the certificate of a proven claim whose delegation is in place, wherever it points', () => {
    const delegated = {
      ownership: ok,
      routing: wrong,
      delegation: ok,
      deadlinePassed: false,
      requested: false,
    };
    expect(onCheck(domain('verifying'), delegated, NOW)?.readyForCertificate).toBe(true);
    expect(onCheck(domain('verified'), delegated, NOW)?.readyForCertificate).toBe(true);
    // Neither the CA's way in (routing) nor the delegation: wait.
    const neither = { ...delegated, delegation: wrong };
    expect(onCheck(domain('verifying'), neither, NOW)?.readyForCertificate).toBe(false);
    expect(onCheck(domain('verified'), neither, NOW)?.readyForCertificate).toBe(false);
    // Served already: nothing to order.
    expect(onCheck(domain('active'), delegated, NOW)?.readyForCertificate).toBe(false);
  });

  it('orders a wildcard’s certificate by its delegation only: routing alone cannot get one', () => {
    const wildcard = (status: DomainStatus) => ({ ...domain(status), name: '*.acme.test' });
    const routed = { ownership: ok, routing: ok, delegation: wrong, deadlinePassed: false, requested: false };
    expect(onCheck(wildcard('verifying'), routed, NOW)?.readyForCertificate).toBe(false);
    expect(onCheck(wildcard('verified'), routed, NOW)?.readyForCertificate).toBe(false);
    const { delegation: _none, ...noDelegation } = routed;
    expect(onCheck(wildcard('verified'), noDelegation, NOW)?.readyForCertificate).toBe(false);
    // The same findings order an exact name's certificate (HTTP-01 reaches the edge).
    expect(onCheck(domain('verified'), routed, NOW)?.readyForCertificate).toBe(true);
    const delegated = { ...routed, routing: wrong, delegation: ok };
    expect(onCheck(wildcard('verified'), delegated, NOW)?.readyForCertificate).toBe(true);
  });

  it('announces no routing change on the first check of a domain made active without one', () => {
    const fresh = { ...domain('active'), lastCheckedAt: null, routingVia: null };
    const findings = { ownership: ok, routing: ok, deadlinePassed: false, requested: false };
    expect(onCheck(fresh, findings, NOW)?.routingChanged).toBe(false);
  });
});

describe('a hand-over to another organization', () => {
  it.each(DOMAIN_STATUSES)('%s', (status) => {
    const expected = isLive(status) ? { patch: { status: 'moved' }, event: 'domain.moved' } : null;
    expect(onHandOver(domain(status))).toEqual(expected);
  });

  it('moves exactly the live claims', () => {
    expect(DOMAIN_STATUSES.filter((status) => onHandOver(domain(status)))).toEqual(['verified', 'active']);
  });
});

describe('a certificate stored for the name', () => {
  it.each([
    ['pending', null],
    ['verifying', null],
    ['verified', { patch: { status: 'active' }, event: 'domain.active' }],
    // A renewal changes nothing; a claim no longer live is not brought back by its certificate.
    ['active', null],
    ['failed', null],
    ['moved', null],
  ] as const)('%s', (status, expected) => {
    expect(onCertificate(domain(status))).toEqual(expected);
  });
});
