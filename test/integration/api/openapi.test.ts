import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RETRYABLE } from '../../../src/acme/issuer.js';
import { errors } from '../../../src/domain/errors.js';
import { DOMAIN_STATUSES } from '../../../src/store/store.js';
import { openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

/**
 * Mixpeek's published spec of add-domain (a copy of shared/spec/add-domain.openapi.md, kept as a
 * fixture so the test runs in any checkout) is binding word for word: every keyword it states must
 * appear with the same value in /openapi.json. Portico may add fields, never change or drop one.
 */
const specText = readFileSync(new URL('../../fixtures/add-domain.openapi.md', import.meta.url), 'utf8');
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

// The document is JSON read back from the wire; the assertions below check its shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Json = Record<string, any>;

const backend = backends[0];
if (!backend) throw new Error('no store backend');

describe('OpenAPI document', () => {
  let api: TestApi;
  let document: Json;
  /** Every operation of the document, with its path and method. */
  const operations = () =>
    Object.entries(document.paths as Record<string, Json>).flatMap(([path, methods]) =>
      Object.entries(methods as Record<string, Json>).map(([method, operation]) => ({
        path,
        method,
        operation,
      })),
    );

  beforeAll(async () => {
    api = await openApiOn(backend);
    const response = await api.call(undefined, 'GET', '/openapi.json');
    expect(response.statusCode).toBe(200);
    document = response.json();
  });
  afterAll(async () => {
    await api?.close();
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

  describe('what a client generator (openapi-typescript, openapi-fetch) relies on', () => {
    const listOperations = [
      '/v1/apps',
      '/v1/apps/{app_id}/domains',
      '/v1/webhooks',
      '/v1/webhooks/{webhook_id}/deliveries',
    ];

    it('lets a list be called without limit and offset, which have defaults', () => {
      for (const path of listOperations) {
        const parameters = document.paths[path].get.parameters as Json[];
        const query = parameters.filter((parameter) => parameter.in === 'query');
        expect(query.map((parameter) => parameter.name).sort(), path).toEqual(['limit', 'offset']);
        for (const parameter of query) {
          expect(parameter.required, `${path} ${parameter.name}`).toBe(false);
          expect(parameter.schema.default, `${path} ${parameter.name}`).toBeTypeOf('number');
        }
      }
    });

    it('requires no query parameter that has a default, anywhere', () => {
      for (const { path, method, operation } of operations()) {
        for (const parameter of (operation.parameters ?? []) as Json[]) {
          if (parameter.in === 'query' && parameter.schema.default !== undefined)
            expect(parameter.required, `${method} ${path} ${parameter.name}`).toBe(false);
        }
      }
    });

    it('names a server, so a client has a base URL', () => {
      expect(document.servers).toEqual([expect.objectContaining({ url: expect.any(String) })]);
    });

    it('gives domain status its enum, the statuses Portico has', () => {
      expect(document.components.schemas.DomainResponse.properties.status).toMatchObject({
        type: 'string',
        enum: [...DOMAIN_STATUSES],
      });
    });

    it('says that /v1/edge/ask needs no key, and every other operation a bearer key', () => {
      for (const { path, method, operation } of operations()) {
        const expected = path === '/v1/edge/ask' ? [] : [{ HTTPBearer: [] }];
        expect(operation.security, `${method} ${path}`).toEqual(expected);
      }
    });

    it('marks every property an answer always carries as required', () => {
      // Mixpeek's schemas keep Mixpeek's `required` (byte for byte, above) though Portico sends
      // more; a webhook's secret is sent only in the answer to its creation.
      const keptAsMixpeekWrites = ['DomainResponse', 'ErrorResponse', 'ErrorDetail', 'HTTPValidationError'];
      const sometimesSent = ['WebhookResponse.secret'];
      const seen = new Set<string>();
      const visit = (schema: unknown): void => {
        if (typeof schema !== 'object' || schema === null) return;
        const { $ref } = schema as { $ref?: unknown };
        if (typeof $ref === 'string') {
          const name = $ref.replace('#/components/schemas/', '');
          if (seen.has(name)) return;
          seen.add(name);
          const component = document.components.schemas[name];
          if (!keptAsMixpeekWrites.includes(name)) {
            for (const property of Object.keys(component.properties ?? {})) {
              if (sometimesSent.includes(`${name}.${property}`)) continue;
              expect(component.required ?? [], `${name}.${property}`).toContain(property);
            }
          }
          visit(component);
          return;
        }
        for (const value of Object.values(schema)) visit(value);
      };
      for (const { operation } of operations()) visit(operation.responses['200']);
      expect([...seen]).toEqual(expect.arrayContaining(['AppResponse', 'AppMetaResponse', 'Pagination']));
    });

    it('gives examples of requests and answers, each valid against its schema', () => {
      const ajv = new Ajv({ strict: false, allErrors: true });
      ajv.addSchema(document, 'openapi');
      const withExamples = [
        'CreateAppRequest',
        'UpdateAppRequest',
        'AppResponse',
        'AddDomainRequest',
        'UpdateDomainRequest',
        'DomainResponse',
        'CreateWebhookRequest',
        'WebhookResponse',
        'DeliveryResponse',
      ];
      for (const name of withExamples) {
        const { examples } = document.components.schemas[name];
        expect(examples, name).toEqual([expect.any(Object)]);
        const validate = ajv.getSchema(`openapi#/components/schemas/${name}`);
        expect(validate?.(examples[0]), `${name}: ${JSON.stringify(validate?.errors)}`).toBe(true);
      }
    });
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
  const documented = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
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
  it('lists every certificate error code (certificate.last_error_code), and whether it is retried soon', () => {
    const section = documented.slice(documented.indexOf('## Certificate errors'));
    for (const [code, retryable] of Object.entries(RETRYABLE)) {
      expect(section, code).toContain(`| \`${code}\` | ${retryable ? 'yes' : 'no'} |`);
    }
  });
});
