import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

describe.each(backends)('API on $name', (backend) => {
  let api: TestApi;
  let key: string;

  beforeAll(async () => {
    api = await openApiOn(backend);
    key = await api.keyFor('acme');
  });
  afterAll(async () => {
    await api?.close();
  });

  const expectError = (
    response: { statusCode: number; json(): unknown },
    status: number,
    type: string,
    code?: string,
  ) => {
    expect(response.statusCode).toBe(status);
    const body = response.json() as {
      success: boolean;
      status: number;
      error: { type: string; code?: string; message: string };
    };
    expect(body.success).toBe(false);
    expect(body.status).toBe(status);
    expect(body.error.type).toBe(type);
    expect(body.error.message.length).toBeGreaterThan(0);
    if (code) expect(body.error.code).toBe(code);
    return body;
  };

  describe('apps', () => {
    it('creates, reads, lists, updates and deletes an app', async () => {
      const created = await api.call(key, 'POST', '/v1/apps', {
        slug: 'acme-search',
        meta: { title: 'Acme search', description: 'Search for acme.com' },
        origin_url: 'https://origin.acme.com',
      });
      expect(created.statusCode).toBe(200);
      const app = created.json();
      expect(app.app_id).toMatch(/^app_[a-z0-9]{12}$/);
      expect(app).toMatchObject({
        slug: 'acme-search',
        meta: { title: 'Acme search', description: 'Search for acme.com' },
        origin_url: 'https://origin.acme.com/',
        default_hostname: 'acme-search.apps.portico.test',
      });
      expect(app.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

      const read = await api.call(key, 'GET', `/v1/apps/${app.app_id}`);
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual(app);

      const list = await api.call(key, 'GET', '/v1/apps?limit=1000');
      expect(list.statusCode).toBe(200);
      expect(list.json().results.map((a: { app_id: string }) => a.app_id)).toContain(app.app_id);

      const updated = await api.call(key, 'PATCH', `/v1/apps/${app.app_id}`, {
        slug: 'acme-find',
        meta: { title: 'Find' },
      });
      expect(updated.statusCode).toBe(200);
      expect(updated.json()).toMatchObject({
        slug: 'acme-find',
        meta: { title: 'Find', description: null },
        default_hostname: 'acme-find.apps.portico.test',
        origin_url: 'https://origin.acme.com/',
      });

      const deleted = await api.call(key, 'DELETE', `/v1/apps/${app.app_id}`);
      expect(deleted.statusCode).toBe(200);
      expect(deleted.json()).toEqual({ success: true, message: expect.any(String) });
      expectError(
        await api.call(key, 'GET', `/v1/apps/${app.app_id}`),
        404,
        'NotFoundError',
        'app_not_found',
      );
      expectError(
        await api.call(key, 'DELETE', `/v1/apps/${app.app_id}`),
        404,
        'NotFoundError',
        'app_not_found',
      );
    });

    it('refuses a taken slug with 409 slug_taken, across organizations too', async () => {
      await createTestApp(api, key, 'taken-slug');
      const other = await api.keyFor('other-org');
      const response = await api.call(other, 'POST', '/v1/apps', {
        slug: 'taken-slug',
        meta: { title: 'x' },
      });
      expectError(response, 409, 'ConflictError', 'slug_taken');
    });

    it('answers 422 in FastAPI shape for a malformed app', async () => {
      const response = await api.call(key, 'POST', '/v1/apps', { slug: 'Bad Slug!', meta: {} });
      expect(response.statusCode).toBe(422);
      const { detail } = response.json();
      expect(detail).toEqual(
        expect.arrayContaining([
          { loc: ['body', 'slug'], msg: expect.stringContaining('pattern'), type: 'string_pattern_mismatch' },
          { loc: ['body', 'meta', 'title'], msg: 'Field required', type: 'missing' },
        ]),
      );
    });

    it('refuses origins that are not http(s) or that are private', async () => {
      const ftp = await api.call(key, 'POST', '/v1/apps', {
        slug: 'ftp-app',
        meta: { title: 'x' },
        origin_url: 'ftp://files.example.com',
      });
      expectError(ftp, 400, 'ValidationError', 'origin_url_invalid');
      for (const origin of [
        'http://127.0.0.1:8080',
        'http://[::1]/',
        'http://10.1.2.3',
        'http://169.254.169.254/latest',
        'http://localhost:3000',
      ]) {
        const response = await api.call(key, 'POST', '/v1/apps', {
          slug: 'private-app',
          meta: { title: 'x' },
          origin_url: origin,
        });
        expectError(response, 400, 'ValidationError', 'origin_url_private');
      }
    });

    it('paginates with limit and offset', async () => {
      const org = await api.keyFor('paging-org');
      for (let i = 0; i < 5; i++) await createTestApp(api, org);
      const first = (await api.call(org, 'GET', '/v1/apps?limit=2')).json();
      expect(first.results).toHaveLength(2);
      expect(first.pagination).toEqual({ total: 5, limit: 2, offset: 0, has_next: true });
      const last = (await api.call(org, 'GET', '/v1/apps?limit=2&offset=4')).json();
      expect(last.results).toHaveLength(1);
      expect(last.pagination).toEqual({ total: 5, limit: 2, offset: 4, has_next: false });
      expect(last.results[0].app_id).not.toBe(first.results[0].app_id);
      for (const bad of ['limit=0', 'limit=1001', 'offset=-1', 'limit=ten']) {
        const response = await api.call(org, 'GET', `/v1/apps?${bad}`);
        expect(response.statusCode, bad).toBe(422);
        expect(response.json().detail[0].loc[0]).toBe('query');
      }
    });
  });

  describe('domains', () => {
    let appId: string;
    beforeAll(async () => {
      appId = await createTestApp(api, key);
    });

    it('adds a domain: 200, pending, a fresh token, the cname target and the records to create', async () => {
      const response = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, {
        domain: '  Search.Acme.com. ',
      });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({
        domain: 'search.acme.com',
        status: 'pending',
        is_primary: false,
        verified_at: null,
        cname_target: 'cname.apps.portico.test',
        app_id: appId,
        verification_errors: [],
        routing: { configured: ['cname.apps.portico.test'], observed: [] },
      });
      expect(body.verification_token).toMatch(/^[a-z0-9]{32}$/);
      expect(body.dns_records).toEqual([
        {
          type: 'TXT',
          name: '_mixpeek-verify.search.acme.com',
          value: `mixpeek-site-verification=${body.verification_token}`,
          purpose: 'ownership',
        },
        { type: 'CNAME', name: 'search.acme.com', value: 'cname.apps.portico.test', purpose: 'routing' },
      ]);
    });

    it('stores Unicode names as their punycode A-label and finds them by either form', async () => {
      const response = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, {
        domain: 'bücher.example.com',
      });
      expect(response.statusCode).toBe(200);
      expect(response.json().domain).toBe('xn--bcher-kva.example.com');
      for (const form of [
        'xn--bcher-kva.example.com',
        'XN--BCHER-KVA.Example.COM.',
        encodeURIComponent('bücher.example.com'),
      ]) {
        const read = await api.call(key, 'GET', `/v1/apps/${appId}/domains/${form}`);
        expect(read.statusCode, form).toBe(200);
        expect(read.json().domain).toBe('xn--bcher-kva.example.com');
      }
    });

    it('refuses a second add to the same app (domain_already_added) and to another app (domain_in_use)', async () => {
      await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'dup.acme.com' });
      expectError(
        await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'DUP.acme.com' }),
        409,
        'ConflictError',
        'domain_already_added',
      );
      const otherApp = await createTestApp(api, key);
      expectError(
        await api.call(key, 'POST', `/v1/apps/${otherApp}/domains`, { domain: 'dup.acme.com' }),
        409,
        'ConflictError',
        'domain_in_use',
      );
    });

    it('lets another organization claim the same name with its own token', async () => {
      const mine = (
        await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'shared.acme.com' })
      ).json();
      const otherKey = await api.keyFor('rival');
      const otherApp = await createTestApp(api, otherKey);
      const theirs = await api.call(otherKey, 'POST', `/v1/apps/${otherApp}/domains`, {
        domain: 'shared.acme.com',
      });
      expect(theirs.statusCode).toBe(200);
      expect(theirs.json().verification_token).not.toBe(mine.verification_token);
    });

    it('issues a new token when a domain is removed and added again', async () => {
      const first = (
        await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'again.acme.com' })
      ).json();
      const removed = await api.call(key, 'DELETE', `/v1/apps/${appId}/domains/again.acme.com`);
      expect(removed.statusCode).toBe(200);
      expect(removed.json()).toEqual({ success: true, message: expect.stringContaining('again.acme.com') });
      const second = (
        await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'again.acme.com' })
      ).json();
      expect(second.verification_token).not.toBe(first.verification_token);
    });

    it('keeps at most one primary domain per app', async () => {
      const app = await createTestApp(api, key);
      const a = await api.call(key, 'POST', `/v1/apps/${app}/domains`, {
        domain: 'a.primary.com',
        is_primary: true,
      });
      expect(a.json().is_primary).toBe(true);
      const b = await api.call(key, 'POST', `/v1/apps/${app}/domains`, {
        domain: 'b.primary.com',
        is_primary: true,
      });
      expect(b.json().is_primary).toBe(true);
      const c = await api.call(key, 'POST', `/v1/apps/${app}/domains`, { domain: 'c.primary.com' });
      expect(c.json().is_primary).toBe(false);
      const primaries = async () =>
        (await api.call(key, 'GET', `/v1/apps/${app}/domains`))
          .json()
          .results.filter((d: { is_primary: boolean }) => d.is_primary)
          .map((d: { domain: string }) => d.domain);
      expect(await primaries()).toEqual(['b.primary.com']);

      const patched = await api.call(key, 'PATCH', `/v1/apps/${app}/domains/c.primary.com`, {
        is_primary: true,
      });
      expect(patched.statusCode).toBe(200);
      expect(patched.json()).toMatchObject({ domain: 'c.primary.com', is_primary: true });
      expect(await primaries()).toEqual(['c.primary.com']);

      await api.call(key, 'PATCH', `/v1/apps/${app}/domains/c.primary.com`, { is_primary: false });
      expect(await primaries()).toEqual([]);

      const concurrent = await Promise.all(
        ['a', 'b', 'c'].map((d) =>
          api.call(key, 'PATCH', `/v1/apps/${app}/domains/${d}.primary.com`, { is_primary: true }),
        ),
      );
      expect(concurrent.every((r) => r.statusCode === 200 || r.statusCode === 409)).toBe(true);
      expect(await primaries()).toHaveLength(1);
      const invalid = await api.call(key, 'PATCH', `/v1/apps/${app}/domains/c.primary.com`, {
        is_primary: 'maybe',
      });
      expect(invalid.statusCode).toBe(422);
      expect(invalid.json().detail[0]).toMatchObject({ loc: ['body', 'is_primary'], type: 'bool_parsing' });
    });

    it('verify moves pending to verifying, schedules a check, and keeps a verified status', async () => {
      await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'verify.acme.com' });
      const response = await api.call(key, 'POST', `/v1/apps/${appId}/domains/verify.acme.com/verify`);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.status).toBe('verifying');
      expect(body.next_check_at).not.toBeNull();
      const domain = await api.store.findDomain(appId, 'verify.acme.com');
      expect(await api.store.findJob(`domain:verify:${domain?.id}`)).toMatchObject({
        kind: 'domain:verify',
        payload: { domainId: domain?.id },
      });

      await api.store.updateDomain(domain?.id as string, {
        status: 'verified',
        verifiedAt: '2026-01-01T00:00:00.000Z',
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
      const again = await api.call(key, 'POST', `/v1/apps/${appId}/domains/verify.acme.com/verify`);
      expect(again.json()).toMatchObject({ status: 'verified', verified_at: '2026-01-01T00:00:00.000Z' });
    });

    it('answers 404 for unknown apps and domains, on every domain route', async () => {
      const missingApp = 'app_doesnotexist';
      for (const [method, url, body] of [
        ['POST', `/v1/apps/${missingApp}/domains`, { domain: 'x.acme.com' }],
        ['GET', `/v1/apps/${missingApp}/domains`],
        ['GET', `/v1/apps/${missingApp}/domains/x.acme.com`],
        ['PATCH', `/v1/apps/${missingApp}/domains/x.acme.com`, { is_primary: true }],
        ['DELETE', `/v1/apps/${missingApp}/domains/x.acme.com`],
        ['POST', `/v1/apps/${missingApp}/domains/x.acme.com/verify`],
      ] as const) {
        expectError(await api.call(key, method, url, body), 404, 'NotFoundError', 'app_not_found');
      }
      for (const [method, suffix, body] of [
        ['GET', ''],
        ['PATCH', '', { is_primary: true }],
        ['DELETE', ''],
        ['POST', '/verify'],
      ] as const) {
        const response = await api.call(
          key,
          method,
          `/v1/apps/${appId}/domains/nowhere.acme.com${suffix}`,
          body,
        );
        expectError(response, 404, 'NotFoundError', 'domain_not_found');
      }
    });

    it('answers 400 with a stable code for names the policy refuses', async () => {
      const cases: [string, string][] = [
        ['', 'domain_invalid'],
        ['   ', 'domain_invalid'],
        [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}.com`, 'domain_too_long'],
        [`${'a'.repeat(64)}.com`, 'domain_label_invalid'],
        ['shop_1.acme.com', 'domain_label_invalid'],
        ['-shop.acme.com', 'domain_label_invalid'],
        ['shop..acme.com', 'domain_label_invalid'],
        ['xn--zz.acme.com', 'domain_label_invalid'],
        // Decode, but not to a valid A-label: an emoji, and a second spelling of xn--ida (ñ).
        ['xn--ls8h.acme.com', 'domain_label_invalid'],
        ['xn---ida.acme.com', 'domain_label_invalid'],
        ['xn--uber-vwc.acme.com', 'domain_label_invalid'],
        ['192.168.1.10', 'domain_is_ip_address'],
        ['::1', 'domain_is_ip_address'],
        ['[2001:db8::1]', 'domain_is_ip_address'],
        ['1.2.3', 'domain_is_ip_address'],
        ['localhost', 'domain_reserved'],
        ['printer.local', 'domain_reserved'],
        ['acme', 'domain_single_label'],
        ['co.uk', 'domain_is_public_suffix'],
        ['com', 'domain_single_label'],
        ['github.io', 'domain_is_public_suffix'],
        ['apps.portico.test', 'domain_under_apps_domain'],
        ['evil.apps.portico.test', 'domain_under_apps_domain'],
        // This server offers no DNS-01, which a wildcard's certificate needs (docs/security.md).
        ['*.acme.com', 'domain_wildcard_not_supported'],
        ['*.co.uk', 'domain_is_public_suffix'],
        ['a.*.acme.com', 'domain_invalid'],
        ['https://shop.acme.com/', 'domain_not_bare_hostname'],
        ['shop.acme.com:443', 'domain_not_bare_hostname'],
        ['shop.acme.com/path', 'domain_not_bare_hostname'],
        ['shop.acme.notatld', 'domain_invalid'],
      ];
      for (const [input, code] of cases) {
        const response = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: input });
        expectError(response, 400, 'ValidationError', code);
      }
      const url = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, {
        domain: 'https://shop.acme.com/',
      });
      expect(url.json().error.message).toContain('"shop.acme.com"');
      expect(url.json().error.details).toMatchObject({ suggestion: 'shop.acme.com' });
    });

    it('answers 422 HTTPValidationError for bodies that do not match AddDomainRequest', async () => {
      const url = `/v1/apps/${appId}/domains`;
      const cases: [unknown, unknown[]][] = [
        [{}, [{ loc: ['body', 'domain'], msg: 'Field required', type: 'missing' }]],
        [
          { domain: 42 },
          [{ loc: ['body', 'domain'], msg: 'Input should be a valid string', type: 'string_type' }],
        ],
        [
          { domain: 'ok.acme.com', is_primary: 'maybe' },
          [
            {
              loc: ['body', 'is_primary'],
              msg: 'Input should be a valid boolean, unable to interpret input',
              type: 'bool_parsing',
            },
          ],
        ],
        [
          { domain: 'ok.acme.com', is_primary: null },
          [{ loc: ['body', 'is_primary'], msg: 'Input should be a valid boolean', type: 'bool_type' }],
        ],
        [
          [],
          [
            {
              loc: ['body'],
              msg: 'Input should be a valid dictionary or object to extract fields from',
              type: 'model_attributes_type',
            },
          ],
        ],
        ['{"domain":', [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }]],
      ];
      for (const [body, detail] of cases) {
        const response = await api.call(key, 'POST', url, body);
        expect(response.statusCode, JSON.stringify(body)).toBe(422);
        expect(response.json()).toEqual({ detail });
      }
      // Labelled JSON but empty: no body, as FastAPI reads it, not a decode error.
      const emptyJson = await api.app.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        payload: '',
      });
      expect(emptyJson.json()).toEqual({
        detail: [{ loc: ['body'], msg: 'Field required', type: 'missing' }],
      });
      const noBody = await api.call(key, 'POST', url);
      expect(noBody.statusCode).toBe(422);
      expect(noBody.json()).toEqual({ detail: [{ loc: ['body'], msg: 'Field required', type: 'missing' }] });
    });

    it('refuses bodies over the limit with 413 and wrong media types with 415', async () => {
      const huge = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'x'.repeat(200_000) });
      expectError(huge, 413, 'PayloadTooLargeError', 'payload_too_large');
      const text = await api.app.inject({
        method: 'POST',
        url: `/v1/apps/${appId}/domains`,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'text/plain' },
        payload: 'search.acme.com',
      });
      expectError(text, 415, 'ValidationError', 'unsupported_media_type');
    });

    it("lists an app's domains with pagination", async () => {
      const app = await createTestApp(api, key);
      for (const name of ['one.list.com', 'two.list.com', 'three.list.com']) {
        await api.call(key, 'POST', `/v1/apps/${app}/domains`, { domain: name });
      }
      const names = (limit: number, offset: number) =>
        api.call(key, 'GET', `/v1/apps/${app}/domains?limit=${limit}&offset=${offset}`).then((r) => r.json());
      const first = await names(1, 0);
      const rest = await names(2, 1);
      expect(first.pagination).toEqual({ total: 3, limit: 1, offset: 0, has_next: true });
      expect(rest.pagination).toEqual({ total: 3, limit: 2, offset: 1, has_next: false });
      const seen = [...first.results, ...rest.results].map((d: { domain: string }) => d.domain);
      expect(seen.sort()).toEqual(['one.list.com', 'three.list.com', 'two.list.com']);
    });

    it('deleting an app deletes its domains, so the name can be claimed again', async () => {
      const app = await createTestApp(api, key);
      await api.call(key, 'POST', `/v1/apps/${app}/domains`, { domain: 'gone.acme.com' });
      await api.call(key, 'DELETE', `/v1/apps/${app}`);
      expect(await api.store.findClaims('gone.acme.com')).toEqual([]);
      const again = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'gone.acme.com' });
      expect(again.statusCode).toBe(200);
    });
  });

  describe('authentication', () => {
    it('answers 401 without a key, with a garbled header, or with an unknown key', async () => {
      expectError(
        await api.call(undefined, 'GET', '/v1/apps'),
        401,
        'AuthenticationError',
        'unauthenticated',
      );
      const garbled = await api.app.inject({
        method: 'GET',
        url: '/v1/apps',
        headers: { authorization: 'Basic Zm9vOmJhcg==' },
      });
      expectError(garbled, 401, 'AuthenticationError', 'unauthenticated');
      expectError(
        await api.call('pk_notakey', 'GET', '/v1/apps'),
        401,
        'AuthenticationError',
        'invalid_api_key',
      );
    });

    it('checks the key before the body: an unauthenticated bad body is 401, not 422', async () => {
      expectError(
        await api.call(undefined, 'POST', '/v1/apps', { nonsense: true }),
        401,
        'AuthenticationError',
      );
    });

    it('lets a read-only key read and answers 403 on writes', async () => {
      const reader = await api.keyFor('acme', 'read');
      const appId = await createTestApp(api, key);
      expect((await api.call(reader, 'GET', `/v1/apps/${appId}`)).statusCode).toBe(200);
      expect((await api.call(reader, 'GET', `/v1/apps/${appId}/domains`)).statusCode).toBe(200);
      for (const [method, url, body] of [
        ['POST', '/v1/apps', { slug: 'reader-app', meta: { title: 'x' } }],
        ['PATCH', `/v1/apps/${appId}`, { meta: { title: 'y' } }],
        ['DELETE', `/v1/apps/${appId}`],
        ['POST', `/v1/apps/${appId}/domains`, { domain: 'reader.acme.com' }],
        ['POST', `/v1/apps/${appId}/domains/reader.acme.com/verify`],
      ] as const) {
        expectError(
          await api.call(reader, method, url, body),
          403,
          'PermissionDeniedError',
          'insufficient_scope',
        );
      }
      expect((await api.call(key, 'GET', `/v1/apps/${appId}`)).statusCode).toBe(200);
    });

    it('stores only a hash of each key', async () => {
      const secret = await api.keyFor('hash-check');
      const { digestApiKey } = await import('../../../src/domain/api-keys.js');
      const rows = await api.store.findApiKeysByLookup(digestApiKey(secret).lookup);
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(secret);
      expect(JSON.stringify(rows)).not.toContain(secret.slice(3));
    });
  });

  describe('service routes', () => {
    it('serves /healthz and /readyz without a key', async () => {
      expect((await api.call(undefined, 'GET', '/healthz')).json()).toEqual({ status: 'ok' });
      const ready = await api.call(undefined, 'GET', '/readyz');
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: 'ready' });
    });

    it('answers unknown routes with a 404 ErrorResponse', async () => {
      expectError(await api.call(key, 'GET', '/v1/nothing-here'), 404, 'NotFoundError', 'route_not_found');
    });
  });
});
