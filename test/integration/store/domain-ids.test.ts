import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../../src/domain/api-keys.js';
import { AppService } from '../../../src/domain/apps.js';
import { DomainService } from '../../../src/domain/domains.js';
import { newTimeOrderedId } from '../../../src/domain/ids.js';
import { type Store, UniqueViolation } from '../../../src/store/store.js';
import { ManualClock } from '../../helpers/clock.js';
import { backends } from '../../helpers/stores.js';

/**
 * Domain ids are time-ordered (the second they were made in, then six random characters), so a
 * clash between two claims made in the same second is possible: it must cost a retry, never a
 * failed add or a claim counted twice.
 */
describe.each(backends)('domain ids on $name', (backend) => {
  let store: Store;
  let orgId: string;
  let appId: string;
  const clock = new ManualClock();
  const policy = { appsDomain: 'apps.portico.test', maxDomainsPerOrg: 2 };

  beforeAll(async () => {
    store = await backend.open();
    ({ orgId } = await createApiKey(store, clock, { orgName: 'ids', scope: 'write' }));
    ({ id: appId } = await new AppService(store, { allowPrivateOrigins: false }, clock).create(orgId, {
      slug: 'ids-app',
      title: 'Ids',
    }));
  });
  afterAll(async () => {
    await store?.close();
  });

  it('have the Mixpeek shape and sort by the second they were made in', () => {
    const ids = [0, 1, 60, 86_400 * 365].map((seconds) => {
      const moment = new ManualClock('2026-11-27T12:00:00.000Z');
      moment.advance(seconds);
      return newTimeOrderedId('dom', moment.now());
    });
    for (const id of ids) expect(id).toMatch(/^dom_[a-z0-9]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    // The time half is the same within a second; the random half differs.
    const sameSecond = [newTimeOrderedId('dom', clock.now()), newTimeOrderedId('dom', clock.now())];
    expect(sameSecond[0]?.slice(0, 10)).toBe(sameSecond[1]?.slice(0, 10));
    expect(sameSecond[0]).not.toBe(sameSecond[1]);
  });

  it('retries an add whose id clashes, and the clash leaves nothing behind', async () => {
    const first = await new DomainService(store, policy, clock).add(orgId, appId, {
      domain: 'first.ids-test.com',
      isPrimary: false,
    });
    const drawn: string[] = [];
    const clashingOnce = new DomainService(store, policy, clock, {
      newDomainId: (now) => {
        const id = drawn.length === 0 ? first.id : newTimeOrderedId('dom', now);
        drawn.push(id);
        return id;
      },
    });
    const second = await clashingOnce.add(orgId, appId, { domain: 'second.ids-test.com', isPrimary: true });

    expect(drawn).toHaveLength(2);
    expect(second.id).toBe(drawn[1]);
    expect(await store.findDomainById(second.id)).toMatchObject({
      name: 'second.ids-test.com',
      isPrimary: true,
    });
    // The first claim is untouched, and the undone attempt did not count against the quota of 2:
    // the organization holds exactly two names, so a third is refused.
    expect(await store.findDomainById(first.id)).toMatchObject({ name: 'first.ids-test.com' });
    await expect(
      new DomainService(store, policy, clock).add(orgId, appId, {
        domain: 'third.ids-test.com',
        isPrimary: false,
      }),
    ).rejects.toMatchObject({ code: 'domain_quota_exceeded' });
  });

  it('gives up after three clashes in a row: a generator that only clashes is a bug to surface', async () => {
    const taken = (await store.listDomains(appId, { limit: 1, offset: 0 })).rows[0]?.id ?? '';
    const attempts: string[] = [];
    const alwaysClashing = new DomainService(store, { ...policy, maxDomainsPerOrg: undefined }, clock, {
      newDomainId: () => {
        attempts.push(taken);
        return taken;
      },
    });
    await expect(
      alwaysClashing.add(orgId, appId, { domain: 'fourth.ids-test.com', isPrimary: false }),
    ).rejects.toBeInstanceOf(UniqueViolation);
    expect(attempts).toHaveLength(3);
    expect(await store.findDomainInOrg(orgId, 'fourth.ids-test.com')).toBeUndefined();
  });
});
