import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

/**
 * Booleans as Mixpeek's API (FastAPI, pydantic's lax mode) takes them: a client written for it
 * sends `"is_primary": "true"` or `1` and must get what it gets there.
 */
const ACCEPTED: [unknown, boolean][] = [
  [true, true],
  [false, false],
  [1, true],
  [0, false],
  ...['true', 'True', 'TRUE', '1', 'yes', 'Yes', 'y', 'Y', 'on', 'ON', 't', 'T'].map(
    (text) => [text, true] as [string, boolean],
  ),
  ...['false', 'False', 'FALSE', '0', 'no', 'NO', 'n', 'N', 'off', 'Off', 'f', 'F'].map(
    (text) => [text, false] as [string, boolean],
  ),
];

const PARSING = { msg: 'Input should be a valid boolean, unable to interpret input', type: 'bool_parsing' };
const TYPE = { msg: 'Input should be a valid boolean', type: 'bool_type' };
const REFUSED: [unknown, typeof PARSING][] = [
  ['maybe', PARSING],
  ['', PARSING],
  [' true', PARSING],
  ['truthy', PARSING],
  [2, PARSING],
  [-1, PARSING],
  [0.5, TYPE],
  [null, TYPE],
  [[], TYPE],
  [{}, TYPE],
];

describe.each(backends)('lax booleans on $name', (backend) => {
  let api: TestApi;
  let key: string;
  let appId: string;

  beforeAll(async () => {
    api = await openApiOn(backend);
    // A route made for this test only (no route of the API takes a boolean in its query yet): the
    // query goes through the same validator compiler and error handler as every other.
    api.app.get(
      '/test-only/flag',
      { schema: { querystring: Type.Object({ flag: Type.Boolean() }), hide: true } },
      async (request) => ({ flag: (request.query as { flag: unknown }).flag }),
    );
    key = await api.keyFor('lax-booleans');
    appId = await createTestApp(api, key);
  });
  afterAll(async () => {
    await api?.close();
  });

  it.each(ACCEPTED)('add-domain takes is_primary %j as %s', async (value, expected) => {
    const domain = `d${ACCEPTED.findIndex(([v]) => Object.is(v, value))}.lax.example.com`;
    const added = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain, is_primary: value });
    expect(added.statusCode, added.body).toBe(200);
    expect(added.json().is_primary).toBe(expected);
    const read = await api.call(key, 'GET', `/v1/apps/${appId}/domains/${domain}`);
    expect(read.json().is_primary).toBe(expected);
  });

  it('update-domain takes them too', async () => {
    const url = `/v1/apps/${appId}/domains/patch.lax.example.com`;
    await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: 'patch.lax.example.com' });
    for (const [value, expected] of [
      ['on', true],
      [0, false],
      ['Y', true],
      ['false', false],
    ] as const) {
      const patched = await api.call(key, 'PATCH', url, { is_primary: value });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json().is_primary).toBe(expected);
    }
  });

  it.each(REFUSED)('refuses is_primary %j with 422 in FastAPI’s shape', async (value, error) => {
    for (const [method, url, body] of [
      ['POST', `/v1/apps/${appId}/domains`, { domain: 'refused.lax.example.com', is_primary: value }],
      ['PATCH', `/v1/apps/${appId}/domains/patch.lax.example.com`, { is_primary: value }],
    ] as const) {
      const response = await api.call(key, method, url, body);
      expect(response.statusCode, `${method} ${JSON.stringify(value)}`).toBe(422);
      expect(response.json()).toEqual({ detail: [{ loc: ['body', 'is_primary'], ...error }] });
    }
    expect((await api.call(key, 'GET', `/v1/apps/${appId}/domains/refused.lax.example.com`)).statusCode).toBe(
      404,
    );
  });

  it('takes the same values in a query, and refuses the same ones', async () => {
    for (const [value, expected] of ACCEPTED) {
      const response = await api.app.inject({
        url: `/test-only/flag?flag=${encodeURIComponent(String(value))}`,
      });
      expect(response.statusCode, String(value)).toBe(200);
      expect(response.json()).toEqual({ flag: expected });
    }
    for (const value of ['maybe', '2', '', 'null']) {
      const response = await api.app.inject({ url: `/test-only/flag?flag=${encodeURIComponent(value)}` });
      expect(response.statusCode, value).toBe(422);
      expect(response.json()).toEqual({ detail: [{ loc: ['query', 'flag'], ...PARSING }] });
    }
    const missing = await api.app.inject({ url: '/test-only/flag' });
    expect(missing.json()).toEqual({
      detail: [{ loc: ['query', 'flag'], msg: 'Field required', type: 'missing' }],
    });
  });

  it('still documents is_primary as a boolean', async () => {
    const document = (await api.call(undefined, 'GET', '/openapi.json')).json();
    expect(document.components.schemas.AddDomainRequest.properties.is_primary).toMatchObject({
      type: 'boolean',
      default: false,
    });
    expect(document.components.schemas.UpdateDomainRequest.properties.is_primary.type).toBe('boolean');
  });
});
