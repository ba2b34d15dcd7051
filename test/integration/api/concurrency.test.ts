import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

describe.each(backends)('concurrent adds on $name', (backend) => {
  let api: TestApi;
  let key: string;

  beforeAll(async () => {
    api = await openApiOn(backend);
    key = await api.keyFor('racers');
  });
  afterAll(async () => {
    await api?.close();
  });

  it('20 parallel adds of one domain to one app: exactly one wins, the rest are domain_already_added', async () => {
    const appId = await createTestApp(api, key);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'race.acme.com' }),
      ),
    );
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    for (const r of responses.filter((r) => r.statusCode === 409))
      expect(r.json().error.code).toBe('domain_already_added');
    expect(await api.store.findClaims('race.acme.com')).toHaveLength(1);
  });

  it('20 parallel adds of one domain to 20 apps of one organization: one wins, the rest are domain_in_use', async () => {
    const apps = await Promise.all(Array.from({ length: 20 }, () => createTestApp(api, key)));
    const responses = await Promise.all(
      apps.map((appId) => api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'spread.acme.com' })),
    );
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    for (const r of responses.filter((r) => r.statusCode !== 200)) {
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('domain_in_use');
    }
    expect(await api.store.findClaims('spread.acme.com')).toHaveLength(1);
  });

  it('20 organizations claiming one name in parallel each get their own claim and token', async () => {
    const callers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const orgKey = await api.keyFor(`claimant-${i}`);
        return { orgKey, appId: await createTestApp(api, orgKey) };
      }),
    );
    const responses = await Promise.all(
      callers.map(({ orgKey, appId }) =>
        api.call(orgKey, 'POST', `/v1/apps/${appId}/domains`, { domain: 'contested.acme.com' }),
      ),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(20).fill(200));
    const tokens = new Set(responses.map((r) => r.json().verification_token));
    expect(tokens.size).toBe(20);
  });
});
