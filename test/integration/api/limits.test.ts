import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/domain/clock.js';
import { Housekeeping } from '../../../src/worker/housekeeping.js';
import { createTestApp, openApi, openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

/** Idempotency keys, per-key rate limits and the per-organization quotas, on both stores. */
describe.each(backends)('limits on $name', (backend) => {
  let api: TestApi;
  let key: string;

  beforeAll(async () => {
    api = await openApiOn(backend, { PORTICO_MAX_DOMAINS_PER_ORG: '3', PORTICO_RATE_LIMIT_PER_MINUTE: '0' });
    key = await api.keyFor('limited');
  });
  afterAll(async () => {
    await api?.close();
  });

  const post = (url: string, body: unknown, idempotencyKey?: string, apiKey = key) =>
    api.app.inject({
      method: 'POST',
      url,
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      payload: JSON.stringify(body),
    });

  it('replays the first answer for a retried request and does the work once', async () => {
    const body = { slug: `idem-${backend.name}`, meta: { title: 'Idempotent' } };
    const first = await post('/v1/apps', body, 'create-app-1');
    expect(first.statusCode).toBe(200);
    const again = await post('/v1/apps', body, 'create-app-1');
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const listed = (await api.call(key, 'GET', '/v1/apps?limit=1000')).json().results;
    expect(listed.filter((a: { slug: string }) => a.slug === body.slug)).toHaveLength(1);

    // The same key with another request is refused; another organization's same key is its own.
    const reused = await post('/v1/apps', { ...body, slug: `other-${backend.name}` }, 'create-app-1');
    expect(reused.statusCode).toBe(409);
    expect(reused.json().error.code).toBe('idempotency_key_reused');
    const stranger = await api.keyFor('stranger');
    const theirs = await post(
      '/v1/apps',
      { ...body, slug: `theirs-${backend.name}` },
      'create-app-1',
      stranger,
    );
    expect(theirs.statusCode).toBe(200);
  });

  it('keeps error answers too, so a retried conflict is the same conflict', async () => {
    const appId = await createTestApp(api, key);
    await post(`/v1/apps/${appId}/domains`, { domain: 'taken.limits.com' });
    const first = await post(`/v1/apps/${appId}/domains`, { domain: 'taken.limits.com' }, 'dup-1');
    const again = await post(`/v1/apps/${appId}/domains`, { domain: 'taken.limits.com' }, 'dup-1');
    expect(first.statusCode).toBe(409);
    expect(again.statusCode).toBe(409);
    expect(again.headers['idempotent-replayed']).toBe('true');
    await api.call(key, 'DELETE', `/v1/apps/${appId}`);
  });

  it('runs concurrent retries with one key once', async () => {
    const appId = await createTestApp(api, key);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        post(`/v1/apps/${appId}/domains`, { domain: 'once.limits.com' }, 'concurrent-1'),
      ),
    );
    for (const answer of answers) {
      expect([200, 409]).toContain(answer.statusCode);
      if (answer.statusCode === 409) expect(answer.json().error.code).toBe('idempotency_key_in_progress');
    }
    expect(answers.some((answer) => answer.statusCode === 200)).toBe(true);
    expect(await api.store.findClaims('once.limits.com')).toHaveLength(1);
    await api.call(key, 'DELETE', `/v1/apps/${appId}`);
  });

  it('housekeeping deletes Idempotency-Key records after 24 hours, in batches, and keeps newer ones', async () => {
    const appId = await createTestApp(api, key);
    const add = () => post(`/v1/apps/${appId}/domains`, { domain: 'kept.limits.com' }, 'housekeeping-1');
    expect((await add()).statusCode).toBe(200);
    const logger = pino({ level: 'silent' });
    // Today: the record is 0 hours old and stays.
    await new Housekeeping(api.store, systemClock, logger).runOnce();
    expect((await add()).headers['idempotent-replayed']).toBe('true');

    // 1,200 records from two days ago (more than one delete batch) and one from an hour ago.
    const day = 24 * 3600_000;
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
    for (let i = 0; i < 1_200; i++)
      await api.store.claimIdempotencyKey('org-old', `old-${i}`, 'hash', ago(2 * day));
    await api.store.claimIdempotencyKey('org-old', 'recent', 'hash', ago(3600_000));
    const pass = await new Housekeeping(api.store, systemClock, logger).runOnce();
    expect(pass.idempotencyKeys).toBe(1_200);
    expect(await api.store.claimIdempotencyKey('org-old', 'old-7', 'other', ago(0))).toBeUndefined();
    expect(await api.store.claimIdempotencyKey('org-old', 'recent', 'other', ago(0))).toMatchObject({
      requestHash: 'hash',
    });

    // A day later the first record has gone too: the same request runs again (and finds its domain).
    const tomorrow = { now: () => new Date(Date.now() + day + 60_000) };
    expect(
      (await new Housekeeping(api.store, tomorrow, logger).runOnce()).idempotencyKeys,
    ).toBeGreaterThanOrEqual(1);
    const again = await add();
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(again.json().error.code).toBe('domain_already_added');
  });

  it('refuses a malformed Idempotency-Key', async () => {
    const answer = await post('/v1/apps', { slug: 'bad-key-app', meta: { title: 'x' } }, 'x'.repeat(300));
    expect(answer.statusCode).toBe(400);
    expect(answer.json().error.code).toBe('idempotency_key_invalid');
  });

  it('caps the domains of an organization with 403 QuotaExceededError', async () => {
    const quotaKey = await api.keyFor('quota-org');
    const appId = await createTestApp(api, quotaKey);
    for (const name of ['one', 'two', 'three']) {
      expect(
        (await post(`/v1/apps/${appId}/domains`, { domain: `${name}.quota.com` }, undefined, quotaKey))
          .statusCode,
      ).toBe(200);
    }
    const over = await post(`/v1/apps/${appId}/domains`, { domain: 'four.quota.com' }, undefined, quotaKey);
    expect(over.statusCode).toBe(403);
    expect(over.json()).toMatchObject({
      success: false,
      status: 403,
      error: { type: 'QuotaExceededError', code: 'domain_quota_exceeded' },
    });
    // At the limit, a name already held is still reported as that conflict, not as the quota.
    const again = await post(`/v1/apps/${appId}/domains`, { domain: 'two.quota.com' }, undefined, quotaKey);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('domain_already_added');
    // Removing a domain, or an app with its domains, gives the room back.
    await api.call(quotaKey, 'DELETE', `/v1/apps/${appId}/domains/one.quota.com`);
    expect(
      (await post(`/v1/apps/${appId}/domains`, { domain: 'four.quota.com' }, undefined, quotaKey)).statusCode,
    ).toBe(200);
    await api.call(quotaKey, 'DELETE', `/v1/apps/${appId}`);
    const fresh = await createTestApp(api, quotaKey);
    for (const name of ['a', 'b', 'c']) {
      expect(
        (await post(`/v1/apps/${fresh}/domains`, { domain: `${name}.again.quota.com` }, undefined, quotaKey))
          .statusCode,
      ).toBe(200);
    }
    expect(
      (await post(`/v1/apps/${fresh}/domains`, { domain: 'd.again.quota.com' }, undefined, quotaKey))
        .statusCode,
    ).toBe(403);
  });

  it('caps the apps of an organization at the shipped 100 with 403 app_quota_exceeded; deleting gives room back', async () => {
    const shipped = await openApi(api.store, { PORTICO_RATE_LIMIT_PER_MINUTE: '0' });
    try {
      expect(shipped.config.maxAppsPerOrg).toBe(100);
      const owner = await shipped.keyFor('app-quota-org');
      const create = (slug: string, apiKey = owner) =>
        shipped.call(apiKey, 'POST', '/v1/apps', { slug, meta: { title: slug } });
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) {
        const created = await create(`quota-${backend.name}-${i}`);
        expect(created.statusCode, created.body).toBe(200);
        ids.push(created.json().app_id);
      }
      const over = await create(`quota-${backend.name}-over`);
      expect(over.statusCode).toBe(403);
      expect(over.json()).toMatchObject({
        success: false,
        status: 403,
        error: { type: 'QuotaExceededError', code: 'app_quota_exceeded', details: { limit: 100 } },
      });
      // Another organization has a quota of its own.
      expect(
        (await create(`quota-${backend.name}-theirs`, await shipped.keyFor('other-quota-org'))).statusCode,
      ).toBe(200);
      await shipped.call(owner, 'DELETE', `/v1/apps/${ids[0]}`);
      expect((await create(`quota-${backend.name}-over`)).statusCode).toBe(200);
      expect((await create(`quota-${backend.name}-over-2`)).statusCode).toBe(403);
    } finally {
      await shipped.close();
    }
  });

  it('lets no more apps than the quota through when creates race', async () => {
    const small = await openApi(api.store, {
      PORTICO_RATE_LIMIT_PER_MINUTE: '0',
      PORTICO_MAX_APPS_PER_ORG: '3',
    });
    try {
      const owner = await small.keyFor('racing-apps-org');
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          small.call(owner, 'POST', '/v1/apps', { slug: `race-${backend.name}-${i}`, meta: { title: 'x' } }),
        ),
      );
      const statuses = answers.map((answer) => answer.statusCode).sort();
      expect(statuses).toEqual([200, 200, 200, ...Array(9).fill(403)]);
      expect((await small.call(owner, 'GET', '/v1/apps')).json().pagination.total).toBe(3);
    } finally {
      await small.close();
    }
  });

  it('answers 429 with Retry-After past the per-key rate', async () => {
    const limited = await openApi(api.store, { PORTICO_RATE_LIMIT_PER_MINUTE: '5' });
    try {
      const statuses: number[] = [];
      let retryAfter: string | undefined;
      for (let i = 0; i < 7; i++) {
        const answer = await limited.call(key, 'GET', '/v1/apps');
        statuses.push(answer.statusCode);
        if (answer.statusCode === 429) {
          retryAfter = String(answer.headers['retry-after']);
          expect(answer.json().error).toMatchObject({ type: 'RateLimitError', code: 'rate_limited' });
        }
      }
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
      expect(statuses.slice(5)).toEqual([429, 429]);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      // Another key has a bucket of its own.
      expect((await limited.call(await limited.keyFor('limited'), 'GET', '/v1/apps')).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
