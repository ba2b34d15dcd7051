import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { createTestApp, openApi, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

/**
 * A domain's `url`: where the edge serves it, with the edge's HTTPS port unless 443, as the edge
 * itself writes it in its redirects. `portico domains verify --wait` prints it.
 */
describe.each(backends)('a domain url on $name', (backend) => {
  let store: Store;
  const apis: TestApi[] = [];

  beforeAll(async () => {
    store = await backend.open();
  });
  afterAll(async () => {
    for (const api of apis) await api.close();
    await store?.close();
  });

  /** A domain added through an API whose edge serves HTTPS on `port` (unset: the shipped default). */
  const addDomain = async (name: string, port?: string) => {
    const api = await openApi(store, port === undefined ? {} : { PORTICO_EDGE_HTTPS_PORT: port });
    apis.push(api);
    const key = await api.keyFor(`url-${name}`);
    const appId = await createTestApp(api, key);
    const added = await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: name });
    expect(added.statusCode, added.body).toBe(200);
    const path = `/v1/apps/${appId}/domains`;
    const read = async (method: string, url: string) => (await api.call(key, method, url)).json();
    return {
      added: added.json(),
      got: await read('GET', `${path}/${name}`),
      listed: (await read('GET', path)).results[0],
      verified: await read('POST', `${path}/${name}/verify`),
    };
  };

  it("names the edge's HTTPS port when it is not 443, in every answer that carries the domain", async () => {
    const answers = await addDomain(`shop.default-port-${backend.name}.com`);
    for (const answer of Object.values(answers)) {
      expect(answer.url).toBe(`https://shop.default-port-${backend.name}.com:8443/`);
    }
    const custom = await addDomain(`shop.custom-port-${backend.name}.com`, '9443');
    expect(custom.got.url).toBe(`https://shop.custom-port-${backend.name}.com:9443/`);
  });

  it('leaves the port out on 443, and the url out when the port is not known', async () => {
    expect((await addDomain(`shop.standard-${backend.name}.com`, '443')).got.url).toBe(
      `https://shop.standard-${backend.name}.com/`,
    );
    // An API node with PORTICO_EDGE_HTTPS_PORT=0 and no edge of its own cannot say where it is served.
    const unknown = await addDomain(`shop.unknown-${backend.name}.com`, '0');
    expect(unknown.got).not.toHaveProperty('url');
  });
});
