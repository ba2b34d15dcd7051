import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { errors } from '../../src/domain/errors.js';
import type { Store } from '../../src/store/store.js';
import { openApi, type TestApi } from '../helpers/api.js';
import { backends } from '../helpers/stores.js';

/**
 * Mixpeek's published spec of add-domain (a copy of shared/spec/add-domain.openapi.md, kept as a
 * fixture so the test runs in any checkout) is binding word for word: every keyword it states must
 * appear with the same value in /openapi.json. Portico may add fields, never change or drop one.
 */
const specText = readFileSync(new URL('../fixtures/add-domain.openapi.md', import.meta.url), 'utf8');
const spec = parseYaml(/````yaml[^\n]*\n([\s\S]*?)````/.exec(specText)?.[1] ?? '');

/** Paths (`a.b[2].c`) where `actual` lacks or differs from something `expected` states. */
function differences(expected: unknown, actual: unknown, path = ''): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array`];
    if (path.endsWith('.required') || path.endsWith('.tags')) {
      return [...expected].sort().join() === [...actual].sort().join()
        ? []
        : [`${path}: ${actual} ≠ ${expected}`];
    }
    if (expected.length !== actual.length) return [`${path}: ${actual.length} items ≠ ${expected.length}`];
    return expected.flatMap((item, i) => differences(item, actual[i], `${path}[${i}]`));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null) return [`${path}: missing`];
    return Object.entries(expected).flatMap(([key, value]) =>
      differences(value, (actual as Record<string, unknown>)[key], `${path}.${key}`),
    );
  }
  return expected === actual ? [] : [`${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`];
}

const backend = backends[0];
if (!backend) throw new Error('no store backend');

describe('OpenAPI document', () => {
  let store: Store;
  let api: TestApi;
  // The document is JSON read back from the wire; the assertions below check its shape.
  // biome-ignore lint/suspicious/noExplicitAny: see above
  let document: Record<string, any>;

  beforeAll(async () => {
    store = await backend.open();
    api = await openApi(store);
    const response = await api.call(undefined, 'GET', '/openapi.json');
    expect(response.statusCode).toBe(200);
    document = response.json();
  });
  afterAll(async () => {
    await api.close();
    await store.close();
  });

  it('is OpenAPI 3.1', () => {
    expect(document.openapi).toBe('3.1.0');
  });

  it('states the add-domain operation exactly as Mixpeek publishes it', () => {
    const expected = spec.paths['/v1/apps/{app_id}/domains'].post;
    expect(differences(expected, document.paths['/v1/apps/{app_id}/domains'].post)).toEqual([]);
  });

  it('states every schema of the add-domain spec exactly, extra fields aside', () => {
    for (const [name, schema] of Object.entries(spec.components.schemas)) {
      expect(differences(schema, document.components.schemas[name], name), name).toEqual([]);
    }
  });

  it('names every operation of the contract with its operationId', () => {
    const operationIds = Object.entries(
      document.paths as Record<string, Record<string, { operationId: string }>>,
    )
      .flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => `${method.toUpperCase()} ${path} ${op.operationId}`),
      )
      .sort();
    expect(operationIds).toEqual(
      [
        'POST /v1/apps create_app_v1_apps_post',
        'GET /v1/apps list_apps_v1_apps_get',
        'GET /v1/apps/{app_id} get_app_v1_apps__app_id__get',
        'PATCH /v1/apps/{app_id} update_app_v1_apps__app_id__patch',
        'DELETE /v1/apps/{app_id} delete_app_v1_apps__app_id__delete',
        'POST /v1/apps/{app_id}/domains add_domain_v1_apps__app_id__domains_post',
        'GET /v1/apps/{app_id}/domains list_domains_v1_apps__app_id__domains_get',
        'GET /v1/apps/{app_id}/domains/{domain} get_domain_v1_apps__app_id__domains__domain__get',
        'PATCH /v1/apps/{app_id}/domains/{domain} update_domain_v1_apps__app_id__domains__domain__patch',
        'DELETE /v1/apps/{app_id}/domains/{domain} remove_domain_v1_apps__app_id__domains__domain__delete',
        'POST /v1/apps/{app_id}/domains/{domain}/verify verify_domain_v1_apps__app_id__domains__domain__verify_post',
        // Portico's own, for platforms that run their own proxy (docs/caddy.md).
        'GET /v1/edge/ask edge_ask_v1_edge_ask_get',
        'POST /v1/webhooks create_webhook_v1_webhooks_post',
        'GET /v1/webhooks list_webhooks_v1_webhooks_get',
        'GET /v1/webhooks/{webhook_id} get_webhook_v1_webhooks__webhook_id__get',
        'DELETE /v1/webhooks/{webhook_id} delete_webhook_v1_webhooks__webhook_id__delete',
        'GET /v1/webhooks/{webhook_id}/deliveries list_webhook_deliveries_v1_webhooks__webhook_id__deliveries_get',
      ].sort(),
    );
  });

  it('is generated from the schemas the routes validate with', async () => {
    // The schema says is_primary is boolean: the route must refuse what the document refuses.
    expect(document.components.schemas.AddDomainRequest.properties.is_primary.type).toBe('boolean');
    const key = await api.keyFor('openapi');
    const response = await api.call(key, 'POST', '/v1/apps/app_000000000000/domains', {
      domain: 'a.example.com',
      is_primary: 'maybe',
    });
    expect(response.statusCode).toBe(422);
  });

  it('renders for a person at /docs', async () => {
    const page = await api.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('swagger-ui');
    const initializer = await api.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(initializer.statusCode).toBe(200);
  });
});

describe('docs/errors.md', () => {
  const documented = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  it('lists every error code Portico answers with', () => {
    // Factories take names or lists of names; either kind of argument makes an error with its code.
    const codes = Object.values(errors).map((make) => {
      const build = make as (...args: unknown[]) => { code: string };
      try {
        return build('x', 'y', 'z').code;
      } catch {
        return build(['x'], ['y'], ['z']).code;
      }
    });
    for (const code of new Set(codes)) expect(documented, code).toContain(`\`${code}\``);
  });
});
