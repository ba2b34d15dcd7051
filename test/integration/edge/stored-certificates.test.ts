import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { Edge } from '../../../src/edge/server.js';
import { startEdgeRole } from '../../../src/roles.js';
import { createServices } from '../../../src/services.js';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { backends } from '../../helpers/stores.js';

type Rig = Awaited<ReturnType<typeof openCertificateRig>>;

/**
 * An edge node that issues nothing (`PORTICO_TLS_ISSUER=none`: an edge-only node, or issuing
 * stopped during a CA incident) still serves the certificates already in the store. One node (the
 * rig: API and worker with the local CA) issues; the other is `serve`'s edge role built from a
 * configuration with no issuer, on its own store connection, sharing the encryption key as a
 * cluster's nodes must. Real TLS clients trusting only the local root connect to it.
 */
describe.each(backends)('an edge with PORTICO_TLS_ISSUER=none ($name)', (backend) => {
  let store: Store;
  let edgeStore: Store;
  let dns: TestDnsServer;
  let origin: TestOrigin;
  let rig: Rig;
  let edge: Edge;
  let root: string;
  const name = `stored-${backend.name}.example.com`;

  beforeAll(async () => {
    [store, edgeStore] = await backend.openPair();
    dns = await startDnsServer();
    origin = await startOrigin();
    rig = await openCertificateRig(store, dns, { PORTICO_ALLOW_PRIVATE_ORIGINS: '1' });
    await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}`, { origin_url: origin.url });
    root = (await rig.api.call(undefined, 'GET', '/tls/root.pem')).body;
    await rig.addVerified(name);
    await rig.drain();
    expect((await rig.read(name)).status).toBe('active');

    const config = loadConfig({
      PORTICO_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'portico-edge-only-')),
      PORTICO_APPS_DOMAIN: rig.config.appsDomain,
      PORTICO_ENCRYPTION_KEY: rig.config.encryptionKey ?? '',
      PORTICO_TLS_ISSUER: 'none',
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    });
    const logger = pino({ level: 'silent' });
    const services = await createServices({ config, store: edgeStore, clock: rig.clock, logger });
    expect(services.issuer).toBeUndefined();
    edge = await startEdgeRole(config, edgeStore, services, logger);
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
  const connect = async (servername: string) => {
    const socket = tls.connect({ host: '127.0.0.1', port: edge.httpsPort, servername, ca: root });
    try {
      await once(socket, 'secureConnect');
      const peer = socket.getPeerCertificate();
      socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
      let head = '';
      for await (const chunk of socket) head += chunk;
      return { peer, status: Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1]) };
    } finally {
      socket.destroy();
    }
  };
  const serialOf = (pem: string | null | undefined) => new X509Certificate(pem ?? '').serialNumber;

  it('completes a TLS handshake for an active domain with the certificate in the store', async () => {
    const stored = await store.findCertificate(name);
    expect(stored?.status).toBe('issued');
    const { peer, status } = await connect(name);
    expect(peer.subjectaltname).toBe(`DNS:${name}`);
    expect(peer.serialNumber).toBe(serialOf(stored?.certificatePem));
    expect(status).toBe(200);
  });

  it('serves an app’s default hostname with the stored wildcard of the apps domain', async () => {
    const hostname = (await rig.api.call(rig.key, 'GET', `/v1/apps/${rig.appId}`)).json().default_hostname;
    const wildcard = await store.findCertificate(`*.${rig.config.appsDomain}`);
    expect(wildcard?.status).toBe('issued');
    const { peer, status } = await connect(hostname);
    expect(peer.subjectaltname).toBe(`DNS:*.${rig.config.appsDomain}`);
    expect(peer.serialNumber).toBe(serialOf(wildcard?.certificatePem));
    expect(status).toBe(200);
  });
});
