import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApi, openApiOn, type TestApi } from '../../helpers/api.js';
import { ManualClock } from '../../helpers/clock.js';
import { backends } from '../../helpers/stores.js';

type Answer = Awaited<ReturnType<TestApi['call']>>;

/**
 * Which slugs an App may take (docs/apps.md): the platform's own names are reserved, a slug is a
 * DNS label in A-label form, and a slug freed by a deleted or renamed app stays with its
 * organization for PORTICO_SLUG_HOLD_DAYS. Through the API, with the shipped defaults, on both stores.
 */
describe.each(backends)('slugs on $name', (backend) => {
  let api: TestApi;
  let clock: ManualClock;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    clock = new ManualClock(new Date().toISOString());
    api = await openApiOn(backend, {}, clock);
    alice = await api.keyFor('alice-org');
    bob = await api.keyFor('bob-org');
  });
  afterAll(async () => {
    await api?.close();
  });

  const create = (key: string, slug: string) =>
    api.call(key, 'POST', '/v1/apps', { slug, meta: { title: slug } });
  const rename = (key: string, appId: string, slug: string) =>
    api.call(key, 'PATCH', `/v1/apps/${appId}`, { slug });
  const remove = (key: string, appId: string) => api.call(key, 'DELETE', `/v1/apps/${appId}`);
  const expectError = (answer: Answer, status: number, type: string, code: string) => {
    expect(answer.statusCode, answer.body).toBe(status);
    expect(answer.json()).toMatchObject({ success: false, status, error: { type, code } });
  };
  const slugsOf = async (key: string) =>
    ((await api.call(key, 'GET', '/v1/apps?limit=1000')).json().results as { slug: string }[]).map(
      (app) => app.slug,
    );

  it('refuses the platform’s own names, the CNAME target’s first of all, with 400 slug_reserved', async () => {
    for (const slug of ['cname', 'www', 'api', 'admin', 'status', 'mail', 'mta-sts', 'wpad']) {
      expectError(await create(alice, slug), 400, 'ValidationError', 'slug_reserved');
    }
    expect(await slugsOf(alice)).toEqual([]);
    // Nothing serves the CNAME target's name for a tenant.
    expect((await api.call(undefined, 'GET', '/v1/edge/ask?domain=cname.apps.portico.test')).statusCode).toBe(
      404,
    );
  });

  it('refuses a slug that is not a DNS label in A-label form with 400 slug_invalid', async () => {
    for (const slug of ['xn--zz', 'xn--ls8h', 'xn---ida', 'ab--cd', 'zz--top']) {
      expectError(await create(alice, slug), 400, 'ValidationError', 'slug_invalid');
    }
    // A real A-label is a slug like any other: bücher.
    const ok = await create(alice, 'xn--bcher-kva');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().default_hostname).toBe('xn--bcher-kva.apps.portico.test');
  });

  it('checks a new slug on PATCH the same way, and leaves the app as it was', async () => {
    const app = (await create(alice, 'patch-me')).json();
    expectError(await rename(alice, app.app_id, 'cname'), 400, 'ValidationError', 'slug_reserved');
    expectError(await rename(alice, app.app_id, 'xn--zz'), 400, 'ValidationError', 'slug_invalid');
    expect((await api.call(alice, 'GET', `/v1/apps/${app.app_id}`)).json().slug).toBe('patch-me');
  });

  it('reserves the CNAME target’s label as configured, and takes PORTICO_RESERVED_SLUGS instead of the default list', async () => {
    const custom = await openApi(
      api.store,
      { PORTICO_CNAME_TARGET: 'edge-in.apps.portico.test', PORTICO_RESERVED_SLUGS: 'billing,team' },
      clock,
    );
    try {
      const key = await custom.keyFor('custom-org');
      const post = (slug: string) => custom.call(key, 'POST', '/v1/apps', { slug, meta: { title: slug } });
      expectError(await post('edge-in'), 400, 'ValidationError', 'slug_reserved');
      expectError(await post('billing'), 400, 'ValidationError', 'slug_reserved');
      expect((await post('www')).statusCode).toBe(200);
    } finally {
      await custom.close();
    }
  });

  it('holds a deleted app’s slug for its organization: others get 409 slug_held until the hold ends', async () => {
    const first = (await create(alice, 'held-shop')).json();
    expect((await remove(alice, first.app_id)).statusCode).toBe(200);

    const taken = await create(bob, 'held-shop');
    expectError(taken, 409, 'ConflictError', 'slug_held');
    const availableAt = Date.parse(taken.json().error.details.available_at);
    expect(availableAt - clock.now().getTime()).toBe(30 * 86400_000);
    const bobs = (await create(bob, 'bob-shop')).json();
    expectError(await rename(bob, bobs.app_id, 'held-shop'), 409, 'ConflictError', 'slug_held');

    // The organization itself takes it back at once.
    const again = await create(alice, 'held-shop');
    expect(again.statusCode, again.body).toBe(200);

    // A rename frees the old slug the same way.
    expect((await rename(alice, again.json().app_id, 'held-shop-2')).statusCode).toBe(200);
    expectError(await create(bob, 'held-shop'), 409, 'ConflictError', 'slug_held');

    // One second short of 30 days it is still held; then anyone may take it.
    clock.advance(30 * 86400 - 1);
    expectError(await create(bob, 'held-shop'), 409, 'ConflictError', 'slug_held');
    clock.advance(1);
    const later = await rename(bob, bobs.app_id, 'held-shop');
    expect(later.statusCode, later.body).toBe(200);
    expect(later.json().default_hostname).toBe('held-shop.apps.portico.test');
  });

  it('never hands a slug to another organization while its app is being deleted', async () => {
    for (let round = 0; round < 10; round++) {
      const slug = `race-${round}`;
      const app = (await create(alice, slug)).json();
      const [removed, taken] = await Promise.all([remove(alice, app.app_id), create(bob, slug)]);
      expect(removed.statusCode).toBe(200);
      expect(taken.statusCode, taken.body).toBe(409);
      expect(['slug_taken', 'slug_held']).toContain(taken.json().error.code);
    }
    expect((await slugsOf(bob)).filter((slug) => slug.startsWith('race-'))).toEqual([]);
  });
});
