import { once } from 'node:events';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Edge } from '../../src/edge/server.js';
import { startEdgeRole } from '../../src/roles.js';
import type { Store } from '../../src/store/store.js';
import { openCertificateRig } from '../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { backends } from '../helpers/stores.js';
import { waitUntil } from '../helpers/wait.js';

type Rig = Awaited<ReturnType<typeof openCertificateRig>>;

interface Handshake {
  /** The certificate the edge presented: serial and names. */
  serial: string;
  subjectAltName: string | undefined;
  /** What the origin saw of a GET / sent over the connection. */
  status: number;
}

/**
 * Apps' default hostnames served from one `*.{apps domain}` certificate, as `serve` runs it with the
 * local CA: the worker orders the wildcard once, the edge finds it for each app's name that has a
 * route, real TLS clients trusting only the local root connect. On PostgreSQL the edge reads
 * through its own store connection, as another node would.
 */
describe.each(backends)('apps’ default hostnames on one wildcard certificate ($name)', (backend) => {
  let store: Store;
  let edgeStore: Store;
  let dns: TestDnsServer;
  let origin: TestOrigin;
  let rig: Rig;
  let edge: Edge;
  let root: string;
  const since = new Date(0).toISOString();

  beforeAll(async () => {
    [store, edgeStore] = await backend.openPair();
    dns = await startDnsServer();
    origin = await startOrigin();
    rig = await openCertificateRig(store, dns, {
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    });
    edge = await startEdgeRole(rig.config, edgeStore, rig.services, pino({ level: 'silent' }));
    root = (await rig.api.call(undefined, 'GET', '/tls/root.pem')).body;
  });
  afterAll(async () => {
    await edge?.close();
    await rig?.api.close();
    if (edgeStore !== store) await edgeStore?.close();
    await origin?.close();
    await dns?.close();
    await store?.close();
  });

  /** A TLS handshake for `servername` trusting only the local root, then a GET / over it. */
  const connect = async (servername: string): Promise<Handshake> => {
    const socket = tls.connect({ host: '127.0.0.1', port: edge.httpsPort, servername, ca: root });
    try {
      await once(socket, 'secureConnect');
      const peer = socket.getPeerCertificate();
      socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
      let head = '';
      for await (const chunk of socket) head += chunk;
      return {
        serial: peer.serialNumber,
        subjectAltName: peer.subjectaltname,
        status: Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1]),
      };
    } finally {
      socket.destroy();
    }
  };
  const refused = (servername: string) =>
    connect(servername).then(
      () => false,
      () => true,
    );
  const createApp = async (slug: string) => {
    const created = await rig.api.call(rig.key, 'POST', '/v1/apps', {
      slug,
      meta: { title: slug },
      origin_url: origin.url,
    });
    expect(created.statusCode, created.body).toBe(200);
    return created.json() as { app_id: string; default_hostname: string };
  };

  it('serves two apps’ default hostnames over TLS with the same wildcard certificate, ordered once', async () => {
    const shop = await createApp(`wild-shop-${backend.name}`);
    const blog = await createApp(`wild-blog-${backend.name}`);
    await rig.drain();

    const first = await connect(shop.default_hostname);
    const second = await connect(blog.default_hostname);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(first.subjectAltName).toBe('DNS:*.apps.portico.test');
    expect(second.serial).toBe(first.serial);
    // One order for every app there is (the rig's own app included), none per name.
    expect(await store.countCertificateOrders(since, 'placed')).toBe(1);
    expect(await store.findCertificate(shop.default_hostname)).toBeUndefined();
    expect(origin.requests.map((r) => r.headers['x-forwarded-host'])).toEqual(
      expect.arrayContaining([shop.default_hostname, blog.default_hostname]),
    );
  });

  it('presents the wildcard only for names that have a route', async () => {
    // Covered by the certificate, but no app has these names: no certificate, handshake refused.
    expect(await refused(`nobody-${backend.name}.apps.portico.test`)).toBe(true);
    expect(await refused(`a.wild-shop-${backend.name}.apps.portico.test`)).toBe(true);
    expect(await refused('apps.portico.test')).toBe(true);

    // A deleted app's name stops being served within seconds, though the wildcard stays.
    const leaving = await createApp(`wild-gone-${backend.name}`);
    await rig.drain();
    expect((await connect(leaving.default_hostname)).status).toBe(200);
    await rig.api.call(rig.key, 'DELETE', `/v1/apps/${leaving.app_id}`);
    await waitUntil(() => refused(leaving.default_hostname));
    expect((await store.findCertificate('*.apps.portico.test'))?.status).toBe('issued');
  });

  it('serves an app renamed to a new slug at once, under the same wildcard', async () => {
    const app = await createApp(`wild-old-${backend.name}`);
    await rig.drain();
    const before = await connect(app.default_hostname);
    const renamed = (
      await rig.api.call(rig.key, 'PATCH', `/v1/apps/${app.app_id}`, { slug: `wild-new-${backend.name}` })
    ).json();
    await rig.drain();
    await waitUntil(() => refused(app.default_hostname));
    const after = await connect(renamed.default_hostname);
    expect(after.status).toBe(200);
    expect(after.serial).toBe(before.serial);
    expect(await store.countCertificateOrders(since, 'placed')).toBe(1);
  });
});
