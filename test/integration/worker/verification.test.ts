import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reverifyJobKey, verifyJobKey } from '../../../src/domain/verification.js';
import type { Store } from '../../../src/store/store.js';
import { createTestApp } from '../../helpers/api.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';
import { openVerificationRig } from '../../helpers/verification.js';

type Rig = Awaited<ReturnType<typeof openVerificationRig>>;

/**
 * Verification end to end: the API, a worker and a real DNS server on loopback whose records the
 * test changes while it runs. Only time is simulated (a manual clock), so hours of schedule take
 * milliseconds; every DNS answer is a real query over UDP (or TCP).
 */
describe.each(backends)('verification on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let rig: Rig;
  let key: string;
  let appId: string;
  let counter = 0;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    rig = await openVerificationRig(store, dns);
    key = await rig.api.keyFor('verifiers');
    appId = await createTestApp(rig.api, key);
  });
  afterAll(async () => {
    await rig.api.close();
    await dns.close();
    await store.close();
  });
  beforeEach(() => {
    dns.fault('*', null);
  });

  const add = async (name = `shop${++counter}.verify-${backend.name}.com`, apiKey = key, app = appId) => {
    const response = await rig.api.call(apiKey, 'POST', `/v1/apps/${app}/domains`, { domain: name });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const verify = async (name: string, apiKey = key, app = appId) => {
    const response = await rig.api.call(apiKey, 'POST', `/v1/apps/${app}/domains/${name}/verify`);
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const read = async (name: string, apiKey = key, app = appId) =>
    (await rig.api.call(apiKey, 'GET', `/v1/apps/${app}/domains/${name}`)).json();
  /** Moves time on and lets the worker run every check that is due. */
  const later = async (seconds: number) => {
    rig.clock.advance(seconds);
    await rig.worker.drain();
  };

  it('answers verified at once when the records exist', async () => {
    const domain = await add();
    rig.publish(domain);
    const verified = await verify(domain.domain);
    expect(verified.status).toBe('verified');
    expect(verified.verified_at).toBe(rig.clock.now().toISOString());
    expect(verified.verification_errors).toEqual([]);
    expect(verified.routing.observed).toEqual(['CNAME cname.apps.portico.test']);
    // Watched from now on: one re-verification queued, six hours out.
    expect(verified.next_check_at).toBe(new Date(rig.clock.now().getTime() + 6 * 3600_000).toISOString());
    const [row] = await store.findClaims(domain.domain);
    expect(await store.findJob(reverifyJobKey(row?.id ?? ''))).toBeDefined();
    expect(await store.findJob(verifyJobKey(row?.id ?? ''))).toBeUndefined();
    expect(await rig.certificateRequested(domain.domain)).toBe(true);
    expect(rig.events).toContainEqual(
      expect.objectContaining({ domain: domain.domain, event: 'domain.verified' }),
    );
  });

  it('says what DNS answered and what to change, then verifies on a later poll', async () => {
    const domain = await add();
    const first = await verify(domain.domain);
    expect(first.status).toBe('verifying');
    expect(first.last_checked_at).toBe(rig.clock.now().toISOString());
    expect(first.next_check_at).toBe(new Date(rig.clock.now().getTime() + 15_000).toISOString());
    const ownership = first.verification_errors.find((e: { code: string }) => e.code === 'txt_not_found');
    expect(ownership.message).toContain(`_mixpeek-verify.${domain.domain}`);
    expect(ownership.message).toContain(`mixpeek-site-verification=${domain.verification_token}`);

    // A TXT record split into several strings, beside another service's record: joined and found.
    const value = `mixpeek-site-verification=${domain.verification_token}`;
    dns.set(`_mixpeek-verify.${domain.domain}`, 'TXT', [
      ['google-site-verification=abc'],
      [value.slice(0, 20), value.slice(20)],
    ]);
    await later(15);
    const verified = await read(domain.domain);
    expect(verified.status).toBe('verified');
    // No routing yet: reported, and not held against ownership.
    expect(verified.verification_errors.map((e: { code: string }) => e.code)).toEqual([
      expect.stringMatching(/^(routing_not_found|nxdomain)$/),
    ]);
    expect(await rig.certificateRequested(domain.domain)).toBe(false);

    dns.set(domain.domain, 'CNAME', 'cname.apps.portico.test');
    await later(15);
    const routed = await read(domain.domain);
    expect(routed).toMatchObject({
      status: 'verified',
      verification_errors: [],
      routing: { observed: ['CNAME cname.apps.portico.test'] },
    });
    expect(await rig.certificateRequested(domain.domain)).toBe(true);
  });

  it('does not accept a stale token from an earlier claim', async () => {
    const first = await add();
    await rig.api.call(key, 'DELETE', `/v1/apps/${appId}/domains/${first.domain}`);
    const second = await add(first.domain);
    rig.publish(first);
    const result = await verify(second.domain);
    expect(result.status).toBe('verifying');
    const mismatch = result.verification_errors.find((e: { code: string }) => e.code === 'txt_mismatch');
    expect(mismatch.message).toContain('has 1 value, none is');
    expect(mismatch.message).toContain(second.verification_token.slice(0, 8));
  });

  it('follows a CNAME chain through the customer’s own alias', async () => {
    const domain = await add();
    dns.add(
      `_mixpeek-verify.${domain.domain}`,
      'TXT',
      `mixpeek-site-verification=${domain.verification_token}`,
    );
    dns.set(domain.domain, 'CNAME', `alias.${domain.domain}`);
    dns.set(`alias.${domain.domain}`, 'CNAME', 'cname.apps.portico.test');
    const result = await verify(domain.domain);
    expect(result.status).toBe('verified');
    expect(result.verification_errors).toEqual([]);
    expect(result.routing.observed).toEqual([
      `CNAME alias.${domain.domain}`,
      'CNAME cname.apps.portico.test',
    ]);
  });

  it('backs off while polling and fails at the deadline; verify starts over', async () => {
    const domain = await add();
    await verify(domain.domain);
    const nextAfter = async (seconds: number) => {
      await later(seconds);
      const now = rig.clock.now().getTime();
      return (Date.parse((await read(domain.domain)).next_check_at) - now) / 1000;
    };
    expect(await nextAfter(15)).toBe(15);
    expect(await nextAfter(10 * 60)).toBe(60);
    expect(await nextAfter(3 * 3600)).toBe(15 * 60);
    expect(await nextAfter(12 * 3600)).toBe(3600);
    await later(72 * 3600);
    const failed = await read(domain.domain);
    expect(failed.status).toBe('failed');
    expect(failed.next_check_at).toBeNull();
    expect(failed.verification_errors[0].code).toBe('txt_not_found');
    expect(rig.events).toContainEqual(
      expect.objectContaining({ domain: domain.domain, event: 'domain.failed' }),
    );

    rig.publish(domain);
    expect((await verify(domain.domain)).status).toBe('verified');
  });

  it('moves a live domain after three definitive failures in a row, and verify brings it back', async () => {
    const domain = await add();
    rig.publish(domain);
    await verify(domain.domain);
    const id = (await store.findClaims(domain.domain))[0]?.id as string;
    await store.updateDomain(id, { status: 'active', updatedAt: rig.clock.now().toISOString() });

    dns.remove(`_mixpeek-verify.${domain.domain}`);
    await later(6 * 3600);
    expect(await read(domain.domain)).toMatchObject({ status: 'active' });
    await later(10 * 60);
    expect(await read(domain.domain)).toMatchObject({ status: 'active' });
    await later(10 * 60);
    const moved = await read(domain.domain);
    expect(moved.status).toBe('moved');
    expect(moved.next_check_at).toBeNull();
    expect(moved.reverify_failures).toBeNull();
    expect(await store.findJob(reverifyJobKey(id))).toBeUndefined();
    expect(rig.events).toContainEqual(
      expect.objectContaining({ domain: domain.domain, event: 'domain.moved' }),
    );

    rig.publish(domain);
    expect((await verify(domain.domain)).status).toBe('verified');
  });

  it('a failure streak resets when the records come back before the third check', async () => {
    const domain = await add();
    rig.publish(domain);
    await verify(domain.domain);
    const id = (await store.findClaims(domain.domain))[0]?.id as string;
    await store.updateDomain(id, { status: 'active', updatedAt: rig.clock.now().toISOString() });
    const ownership = `_mixpeek-verify.${domain.domain}`;
    dns.set(ownership, 'TXT', 'mixpeek-site-verification=another-claims-token');
    await later(6 * 3600);
    await later(10 * 60);
    expect((await store.findDomainById(id))?.failureStreak).toBe(2);
    const failing = await read(domain.domain);
    expect(failing.verification_errors.map((e: { code: string }) => e.code)).toEqual(['txt_mismatch']);
    // The API says how close the domain is to `moved`, and that DNS's answer counted.
    expect(failing).toMatchObject({ status: 'active', reverify_failures: 2, moved_after_failures: 3 });
    expect(failing.verification_errors[0].definitive).toBe(true);
    dns.set(ownership, 'TXT', `mixpeek-site-verification=${domain.verification_token}`);
    await later(10 * 60);
    expect(await store.findDomainById(id)).toMatchObject({ status: 'active', failureStreak: 0 });
    expect(await read(domain.domain)).toMatchObject({ reverify_failures: 0, verification_errors: [] });
  });

  it('never counts routing against an active domain: a change is announced and the domain kept', async () => {
    const domain = await add();
    rig.publish(domain);
    await verify(domain.domain);
    const id = (await store.findClaims(domain.domain))[0]?.id as string;
    await store.updateDomain(id, { status: 'active', updatedAt: rig.clock.now().toISOString() });
    await later(6 * 3600);
    expect(await read(domain.domain)).toMatchObject({ routing: { ok: true, via: 'dns' } });
    // DNS now points at something that is not the platform (and no proxy there answers for it).
    dns.set(domain.domain, 'CNAME', 'elsewhere.example.net');
    for (let i = 0; i < 4; i++) await later(6 * 3600);
    const kept = await read(domain.domain);
    expect(kept).toMatchObject({ status: 'active', reverify_failures: 0, routing: { ok: false, via: null } });
    expect(kept.verification_errors.map((e: { code: string }) => e.code)).toEqual(['cname_mismatch']);
    // Announced once, when it changed; not on every check that finds it so.
    const changes = rig.events.filter(
      (e) => e.event === 'domain.routing_changed' && e.domain === domain.domain,
    );
    expect(changes).toHaveLength(1);
  });

  it('never counts SERVFAIL, REFUSED or silence against a live domain', async () => {
    const domain = await add();
    rig.publish(domain);
    await verify(domain.domain);
    const id = (await store.findClaims(domain.domain))[0]?.id as string;
    await store.updateDomain(id, { status: 'active', updatedAt: rig.clock.now().toISOString() });
    const seen = new Set<string>();
    for (const fault of ['servfail', 'silence', 'refused', 'servfail', 'silence'] as const) {
      dns.fault('*', fault);
      await later(6 * 3600);
      const current = await read(domain.domain);
      expect(current).toMatchObject({ status: 'active', reverify_failures: 0 });
      for (const error of current.verification_errors) {
        seen.add(error.code);
        expect(error.definitive, error.code).toBe(false);
      }
    }
    expect(seen).toEqual(new Set(['servfail', 'timeout', 'refused']));
    expect((await store.findDomainById(id))?.failureStreak).toBe(0);
    dns.fault('*', null);
    await later(10 * 60);
    expect(await read(domain.domain)).toMatchObject({ status: 'active', verification_errors: [] });
  });

  it('falls back to TCP when the UDP answer is truncated', async () => {
    const domain = await add();
    rig.publish(domain);
    dns.fault('*', 'truncate');
    dns.resetQueries();
    expect((await verify(domain.domain)).status).toBe('verified');
    expect(dns.queries.some((q) => q.transport === 'tcp')).toBe(true);
  });

  it('hands a name to the organization that proved DNS control most recently', async () => {
    const name = `contested.verify-${backend.name}.com`;
    const mine = await add(name);
    rig.publish(mine);
    expect((await verify(name)).status).toBe('verified');

    const rivalKey = await rig.api.keyFor('rival-verifiers');
    const rivalApp = await createTestApp(rig.api, rivalKey);
    const theirs = await add(name, rivalKey, rivalApp);
    // Not proven yet: adding a claim takes nothing from anyone.
    expect((await read(name)).status).toBe('verified');
    dns.add(`_mixpeek-verify.${name}`, 'TXT', `mixpeek-site-verification=${theirs.verification_token}`);
    expect((await verify(name, rivalKey, rivalApp)).status).toBe('verified');

    expect((await read(name)).status).toBe('moved');
    const live = (await store.findClaims(name)).filter(
      (c) => c.status === 'verified' || c.status === 'active',
    );
    expect(live.map((c) => c.appId)).toEqual([rivalApp]);
  });

  describe('verify on a verified or active domain', () => {
    /** An active domain whose records are in place, and its id. */
    const activeDomain = async () => {
      const domain = await add();
      rig.publish(domain);
      expect((await verify(domain.domain)).status).toBe('verified');
      const id = (await store.findClaims(domain.domain))[0]?.id as string;
      await store.updateDomain(id, { status: 'active', updatedAt: rig.clock.now().toISOString() });
      return { domain, id };
    };
    const codes = (answer: { verification_errors: { code: string }[] }) =>
      answer.verification_errors.map((error) => error.code);

    it('checks DNS now and answers what it found, at most once per domain per 10 s', async () => {
      const { domain, id } = await activeDomain();
      dns.set(domain.domain, 'CNAME', 'elsewhere.example.net');
      rig.clock.advance(60);
      dns.resetQueries();
      const checked = await verify(domain.domain);
      expect(dns.queriesFor(domain.domain)).toBeGreaterThan(0);
      expect(checked.status).toBe('active');
      expect(checked.last_checked_at).toBe(rig.clock.now().toISOString());
      expect(codes(checked)).toEqual(['cname_mismatch']);
      expect(checked.routing.observed).toEqual(['CNAME elsewhere.example.net']);

      // A faster repeat answers that check, asking DNS nothing.
      rig.clock.advance(9);
      dns.set(domain.domain, 'CNAME', 'cname.apps.portico.test');
      dns.resetQueries();
      const repeated = await verify(domain.domain);
      expect(dns.queries).toEqual([]);
      expect(repeated.last_checked_at).toBe(checked.last_checked_at);
      expect(codes(repeated)).toEqual(['cname_mismatch']);

      rig.clock.advance(1);
      const fixed = await verify(domain.domain);
      expect(fixed).toMatchObject({ status: 'active', verification_errors: [] });
      expect(fixed.last_checked_at).toBe(rig.clock.now().toISOString());
      expect(fixed.next_check_at).toBe(new Date(rig.clock.now().getTime() + 6 * 3600_000).toISOString());
      expect(await store.findJob(reverifyJobKey(id))).toMatchObject({ runAt: fixed.next_check_at });
    });

    it('never counts a failure it finds: only the schedule demotes, as before', async () => {
      const { domain, id } = await activeDomain();
      dns.remove(`_mixpeek-verify.${domain.domain}`);
      for (let i = 0; i < 5; i++) {
        rig.clock.advance(10);
        const answer = await verify(domain.domain);
        expect(answer.status).toBe('active');
        expect(codes(answer)).toEqual(['txt_not_found']);
        expect(answer.last_checked_at).toBe(rig.clock.now().toISOString());
      }
      expect((await store.findDomainById(id))?.failureStreak).toBe(0);
      // The failure seen brought the scheduled re-check forward to 10 minutes, and that counts.
      const due = (await read(domain.domain)).next_check_at;
      expect(Date.parse(due) - rig.clock.now().getTime()).toBeLessThanOrEqual(10 * 60_000);
      await later(10 * 60);
      expect(await store.findDomainById(id)).toMatchObject({ status: 'active', failureStreak: 1 });
      await later(10 * 60);
      await later(10 * 60);
      expect((await read(domain.domain)).status).toBe('moved');
    });

    it('clears a failure streak once the records are back', async () => {
      const { domain, id } = await activeDomain();
      const ownership = `_mixpeek-verify.${domain.domain}`;
      dns.set(ownership, 'TXT', 'mixpeek-site-verification=another-claims-token');
      await later(6 * 3600);
      expect((await store.findDomainById(id))?.failureStreak).toBe(1);
      dns.set(ownership, 'TXT', `mixpeek-site-verification=${domain.verification_token}`);
      rig.clock.advance(30);
      expect(await verify(domain.domain)).toMatchObject({ status: 'active', verification_errors: [] });
      expect((await store.findDomainById(id))?.failureStreak).toBe(0);
    });

    it('asks for the certificate of a verified domain as soon as its CNAME is there', async () => {
      const domain = await add();
      dns.add(
        `_mixpeek-verify.${domain.domain}`,
        'TXT',
        `mixpeek-site-verification=${domain.verification_token}`,
      );
      expect((await verify(domain.domain)).status).toBe('verified');
      expect(await rig.certificateRequested(domain.domain)).toBe(false);
      dns.set(domain.domain, 'CNAME', 'cname.apps.portico.test');
      rig.clock.advance(10);
      expect(await verify(domain.domain)).toMatchObject({ status: 'verified', verification_errors: [] });
      expect(await rig.certificateRequested(domain.domain)).toBe(true);
    });

    it('leaves the check to a worker that holds it, and answers the stored state', async () => {
      const { domain, id } = await activeDomain();
      rig.clock.advance(60);
      const before = await read(domain.domain);
      const held = await store.claimJob(reverifyJobKey(id), 'another-worker', rig.clock.now().toISOString());
      expect(held).toBeDefined();
      dns.resetQueries();
      const answer = await verify(domain.domain);
      expect(dns.queries).toEqual([]);
      expect(answer.last_checked_at).toBe(before.last_checked_at);
      // The worker finishes without running it (its lease given back, the job kept as it was).
      if (held) await store.rescheduleJob(held, 'another-worker', held.runAt);
    });
  });

  it('removing a domain removes its checks', async () => {
    const domain = await add();
    await verify(domain.domain);
    const id = (await store.findClaims(domain.domain))[0]?.id as string;
    expect(await store.findJob(verifyJobKey(id))).toBeDefined();
    await rig.api.call(key, 'DELETE', `/v1/apps/${appId}/domains/${domain.domain}`);
    expect(await store.findJob(verifyJobKey(id))).toBeUndefined();
    expect(await store.findJob(reverifyJobKey(id))).toBeUndefined();
  });
});
