import { pino } from 'pino';
import type { Edge } from '../../src/edge/server.js';
import { startEdgeRole } from '../../src/roles.js';
import type { Store } from '../../src/store/store.js';
import { createTestApp } from './api.js';
import { openCertificateRig } from './certificates.js';
import { startDnsServer, type TestDnsServer } from './dns-server.js';
import { startOrigin, type TestOrigin } from './origin.js';
import type { Backend } from './stores.js';

export interface ServedEdge {
  /** The store the API and the worker use (the edge has a connection of its own on PostgreSQL). */
  store: Store;
  rig: Awaited<ReturnType<typeof openCertificateRig>>;
  edge: Edge;
  origin: TestOrigin;
  /** The loopback DNS server standing in for customers' DNS. */
  dns: TestDnsServer;
  /** The local CA's root (PEM): what a client trusts to reach the edge. */
  root: string;
  /** Adds, verifies and activates `name` for the rig's App; resolves once it is served. */
  activate(name: string): Promise<void>;
  /** A new App of a new organization, on the same origin: another tenant. Answers its default hostname. */
  addTenant(org: string): Promise<string>;
  /** The default hostname of the rig's App. */
  defaultHostname(): Promise<string>;
  close(): Promise<void>;
}

/**
 * The edge as `serve` runs it (`startEdgeRole`, with the shipped configuration but for ports and
 * private origins, since the origin is on loopback, and any `env` a test adds) over a store, with the API and a worker issuing
 * certificates from the local CA, the loopback DNS server standing in for customers' DNS, and one
 * real origin behind every App. On PostgreSQL the edge reads through its own store connection.
 * `options.env` adds settings (another issuer: ACME against Pebble); `options.dns` is a DNS server
 * the caller made (one Pebble already asks), which the caller closes.
 */
export async function openServedEdge(
  backend: Backend,
  options: { env?: Record<string, string>; dns?: TestDnsServer } = {},
): Promise<ServedEdge> {
  const [store, edgeStore] = await backend.openPair();
  const dns: TestDnsServer = options.dns ?? (await startDnsServer());
  const origin = await startOrigin();
  const rig = await openCertificateRig(store, dns, {
    PORTICO_EDGE_HTTP_PORT: '0',
    PORTICO_EDGE_HTTPS_PORT: '0',
    PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    ...options.env,
  });
  const edge = await startEdgeRole(rig.config, edgeStore, rig.services, pino({ level: 'silent' }));
  await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}`, { origin_url: origin.url });
  const root = (await rig.api.call(undefined, 'GET', '/tls/root.pem')).body;

  const hostnameOf = async (key: string, appId: string): Promise<string> =>
    (await rig.api.call(key, 'GET', `/v1/apps/${appId}`)).json().default_hostname;

  return {
    store,
    rig,
    edge,
    origin,
    dns,
    root,
    async activate(name) {
      await rig.addVerified(name);
      await rig.drain();
      const status = (await rig.read(name)).status;
      if (status !== 'active') throw new Error(`${name} is ${status}, not active`);
    },
    async addTenant(org) {
      const key = await rig.api.keyFor(org);
      const appId = await createTestApp(rig.api, key);
      await rig.api.call(key, 'PATCH', `/v1/apps/${appId}`, { origin_url: origin.url });
      // The default hostname's certificate.
      await rig.drain();
      return hostnameOf(key, appId);
    },
    defaultHostname: () => hostnameOf(rig.key, rig.appId),
    async close() {
      await edge.close();
      await rig.api.close();
      if (edgeStore !== store) await edgeStore.close();
      await origin.close();
      if (dns !== options.dns) await dns.close();
      await store.close();
    },
  };
}
