import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedConnector } from './guarded-connector.js';

/** Any IPv4 or IPv6 address written out: what an error a tenant reads must not contain. */
const ANY_ADDRESS = /\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f]*:[0-9a-f:]*/i;

/**
 * The guard on real connections: a real HTTP server on 127.0.0.1 stands for an internal service,
 * reached by undici through the guarded connector as the edge and the webhook sender reach theirs.
 * `localhost` is resolved by the system's resolver, as any name an origin_url could hold.
 */
describe('guardedConnector', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    server = http.createServer((_req, res) => res.end('internal'));
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const fetchWith = async (allowPrivate: boolean, url: string) => {
    const agent = new Agent({ connect: guardedConnector({ allowPrivate, timeoutMs: 5_000 }) });
    try {
      const response = await request(url, { dispatcher: agent });
      return await response.body.text();
    } finally {
      await agent.close();
    }
  };

  it('reaches the internal service only when private addresses are allowed', async () => {
    expect(await fetchWith(true, `http://localhost:${port}/`)).toBe('internal');
  });

  it('refuses a name resolving to a private address, without saying which address', async () => {
    const before = connections;
    const error = await fetchWith(false, `http://localhost:${port}/`).catch((caught: Error) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'PORTICO_PRIVATE_ORIGIN' });
    const { message } = error as Error;
    expect(message).toBe('the address of localhost is not allowed (a private or reserved address)');
    expect(message).not.toMatch(ANY_ADDRESS);
    expect(connections).toBe(before);
  });

  it.each(['127.0.0.1', '[::ffff:7f00:1]', '[::ffff:127.0.0.1]'])(
    'refuses the literal %s, which Node connects to without a lookup',
    async (host) => {
      const before = connections;
      await expect(fetchWith(false, `http://${host}:${port}/`)).rejects.toMatchObject({
        code: 'PORTICO_PRIVATE_ORIGIN',
      });
      expect(connections).toBe(before);
    },
  );
});
