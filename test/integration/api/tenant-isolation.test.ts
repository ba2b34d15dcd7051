import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

/**
 * Every endpoint, called by every pair of organizations and key scopes: an organization never sees,
 * changes or learns of another's apps or domains. Foreign resources answer exactly as missing ones
 * do (404 with the same body shape), and a foreign write changes nothing.
 */
describe.each(backends)('tenant isolation on $name', (backend) => {
  let api: TestApi;
  const orgs = ['alpha', 'beta', 'gamma'];
  const keys: Record<string, { write: string; read: string }> = {};
  const owned: Record<string, { appId: string; domain: string; webhookId: string }> = {};

  beforeAll(async () => {
    api = await openApiOn(backend);
    for (const org of orgs) {
      keys[org] = { write: await api.keyFor(org), read: await api.keyFor(org, 'read') };
      const appId = await createTestApp(api, keys[org].write);
      const domain = `shop.${org}-isolation.com`;
      const added = await api.call(keys[org].write, 'POST', `/v1/apps/${appId}/domains`, { domain });
      expect(added.statusCode).toBe(200);
      const webhook = await api.call(keys[org].write, 'POST', '/v1/webhooks', {
        url: `https://hooks.${org}.example.com/`,
      });
      expect(webhook.statusCode).toBe(200);
      owned[org] = { appId, domain, webhookId: webhook.json().webhook_id };
    }
  });
  afterAll(async () => {
    await api?.close();
  });

  const endpoints = (appId: string, domain: string, webhookId: string) =>
    [
      ['GET', `/v1/webhooks/${webhookId}`],
      ['GET', `/v1/webhooks/${webhookId}/deliveries`],
      ['DELETE', `/v1/webhooks/${webhookId}`],
      ['GET', `/v1/apps/${appId}`],
      ['PATCH', `/v1/apps/${appId}`, { meta: { title: 'taken over' } }],
      ['DELETE', `/v1/apps/${appId}`],
      ['POST', `/v1/apps/${appId}/domains`, { domain: 'intruder.example.com' }],
      ['GET', `/v1/apps/${appId}/domains`],
      ['GET', `/v1/apps/${appId}/domains/${domain}`],
      ['PATCH', `/v1/apps/${appId}/domains/${domain}`, { is_primary: true }],
      ['POST', `/v1/apps/${appId}/domains/${domain}/verify`],
      ['DELETE', `/v1/apps/${appId}/domains/${domain}`],
    ] as const;

  it('answers 404 on every endpoint for another organization’s app, for write and read keys', async () => {
    for (const caller of orgs) {
      for (const target of orgs.filter((org) => org !== caller)) {
        const { appId, domain, webhookId } = owned[target] as {
          appId: string;
          domain: string;
          webhookId: string;
        };
        for (const [method, url, body] of endpoints(appId, domain, webhookId)) {
          for (const scope of ['write', 'read'] as const) {
            const response = await api.call(keys[caller]?.[scope], method, url, body);
            const isRead = method === 'GET';
            // A read-only key is refused a write before the app is looked up, which reveals nothing either.
            const expected = !isRead && scope === 'read' ? 403 : 404;
            expect(response.statusCode, `${caller}/${scope} ${method} ${url}`).toBe(expected);
            if (expected === 404) {
              expect(response.json().error.code).toBe(
                url.startsWith('/v1/webhooks') ? 'webhook_not_found' : 'app_not_found',
              );
              expect(response.body).not.toContain(target);
            }
          }
        }
      }
    }
  });

  it('a missing app and a foreign app are indistinguishable', async () => {
    const foreign = await api.call(keys.alpha?.write, 'GET', `/v1/apps/${owned.beta?.appId}`);
    const missing = await api.call(keys.alpha?.write, 'GET', '/v1/apps/app_000000000000');
    expect(foreign.statusCode).toBe(missing.statusCode);
    expect(Object.keys(foreign.json().error).sort()).toEqual(Object.keys(missing.json().error).sort());
    expect(foreign.json().error.message.replace(owned.beta?.appId, 'ID')).toBe(
      missing.json().error.message.replace('app_000000000000', 'ID'),
    );
  });

  it('lists only the caller’s own apps and webhooks', async () => {
    for (const org of orgs) {
      const hooks = (await api.call(keys[org]?.read, 'GET', '/v1/webhooks')).json();
      expect(hooks.results.map((w: { webhook_id: string }) => w.webhook_id)).toEqual([owned[org]?.webhookId]);
      const list = (await api.call(keys[org]?.read, 'GET', '/v1/apps')).json();
      expect(list.results.map((a: { app_id: string }) => a.app_id)).toEqual([owned[org]?.appId]);
      expect(list.pagination.total).toBe(1);
    }
  });

  it('foreign writes changed nothing', async () => {
    for (const org of orgs) {
      const { appId, domain } = owned[org] as { appId: string; domain: string };
      const app = (await api.call(keys[org]?.read, 'GET', `/v1/apps/${appId}`)).json();
      expect(app.meta.title).not.toBe('taken over');
      const domains = (await api.call(keys[org]?.read, 'GET', `/v1/apps/${appId}/domains`)).json().results;
      expect(domains.map((d: { domain: string }) => d.domain)).toEqual([domain]);
      expect(domains[0]).toMatchObject({ status: 'pending', is_primary: false });
    }
  });

  it('a claim on a name another organization holds does not reveal that claim', async () => {
    const response = await api.call(keys.gamma?.write, 'POST', `/v1/apps/${owned.gamma?.appId}/domains`, {
      domain: owned.alpha?.domain,
    });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain(owned.alpha?.appId);
    const alphaDomain = (
      await api.call(keys.alpha?.read, 'GET', `/v1/apps/${owned.alpha?.appId}/domains/${owned.alpha?.domain}`)
    ).json();
    expect(response.json().verification_token).not.toBe(alphaDomain.verification_token);
  });
});
