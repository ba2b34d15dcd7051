import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
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

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * The edge as `serve` runs it, on the store: domains verified through the API, certificates issued
 * by the worker (local CA), then real TLS clients trusting only the root the API hands out. On
 * PostgreSQL the API and the edge use separate store connections, as two nodes would, so a removal
 * reaches the edge through LISTEN/NOTIFY.
 */
describe.each(backends)('the edge serving from the $name store', (backend) => {
  let store: Store;
  let edgeStore: Store;
  let dns: TestDnsServer;
  let origin: TestOrigin;
  let rig: Rig;
  let edge: Edge;
  let root: string;
  const suffix = `edge-${backend.name}.com`;

  beforeAll(async () => {
    [store, edgeStore] = await backend.openPair();
    dns = await startDnsServer();
    origin = await startOrigin();
    rig = await openCertificateRig(store, dns, {
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    });
    // The edge reads through its own store: on PostgreSQL, its own pool and LISTEN connection.
    edge = await startEdgeRole(rig.config, edgeStore, rig.services, pino({ level: 'silent' }));
    await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}`, { origin_url: origin.url });
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

  const httpsGet = (servername: string, pathname = '/', host = servername) =>
    new Promise<Answer>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: edge.httpsPort,
            servername,
            path: pathname,
            headers: { host },
            ca: root,
            agent: false,
          },
          (res) => {
            let body = '';
            res.on('data', (chunk) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          },
        )
        .on('error', reject);
    });
  const httpGet = (host: string, pathname = '/') =>
    new Promise<Answer>((resolve, reject) => {
      http
        .get(
          { host: '127.0.0.1', port: edge.httpPort, path: pathname, headers: { host }, agent: false },
          (res) => {
            let body = '';
            res.on('data', (chunk) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          },
        )
        .on('error', reject);
    });
  const activate = async (name: string) => {
    await rig.addVerified(name);
    await rig.drain();
    expect((await rig.read(name)).status).toBe('active');
  };

  it('serves an active domain over HTTPS with its own certificate, proxied to the App', async () => {
    const name = `shop.${suffix}`;
    await activate(name);
    const answer = await httpsGet(name, '/catalog?q=1');
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body);
    expect(seen.url).toBe('/catalog?q=1');
    expect(seen.headers['x-forwarded-host']).toBe(name);
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-for']).toContain('127.0.0.1');
  });

  it('serves the App’s default hostname too', async () => {
    await rig.drain();
    const app = (await rig.api.call(rig.key, 'GET', `/v1/apps/${rig.appId}`)).json();
    const answer = await httpsGet(app.default_hostname, '/');
    expect(answer.status).toBe(200);
  });

  it('gives no certificate for a name that is not active, and a 404 naming nobody over HTTP', async () => {
    const name = `pending.${suffix}`;
    const added = (
      await rig.api.call(rig.key, 'POST', `/v1/apps/${rig.appId}/domains`, { domain: name })
    ).json();
    await expect(httpsGet(name)).rejects.toThrow();
    const answer = await httpGet(name, '/');
    expect(answer.status).toBe(404);
    expect(answer.body).not.toContain(rig.appId);
    expect(answer.body).not.toContain(added.verification_token);
    expect(answer.body).not.toMatch(/app-|cert-org/);
  });

  it('answers 421 when Host does not match the SNI name', async () => {
    const answer = await httpsGet(`shop.${suffix}`, '/', 'other.example.com');
    expect(answer.status).toBe(421);
  });

  it('redirects a non-primary domain to the active primary with 308, path and query kept', async () => {
    const primary = `primary.${suffix}`;
    const secondary = `www.${suffix}`;
    await activate(primary);
    await activate(secondary);
    await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}/domains/${primary}`, { is_primary: true });
    await waitUntil(async () => (await httpsGet(secondary, '/a/b?c=d')).status === 308);
    const answer = await httpsGet(secondary, '/a/b?c=d');
    expect(answer.headers.location).toBe(`https://${primary}:${edge.httpsPort}/a/b?c=d`);
    expect((await httpsGet(primary, '/')).status).toBe(200);
    await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}/domains/${primary}`, { is_primary: false });
    await waitUntil(async () => (await httpsGet(secondary, '/')).status === 200);
  });

  it('redirects HTTP to HTTPS for served names and answers ACME challenges from the store', async () => {
    const name = `shop.${suffix}`;
    const redirect = await httpGet(name, '/x?y=1');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe(`https://${name}:${edge.httpsPort}/x?y=1`);
    await rig.api.call(rig.key, 'GET', '/healthz');
    await store.putChallenge('tok_abc-123', 'tok_abc-123.thumbprint', new Date().toISOString());
    const challenge = await httpGet(`anything.${suffix}`, '/.well-known/acme-challenge/tok_abc-123');
    expect(challenge.status).toBe(200);
    expect(challenge.body).toBe('tok_abc-123.thumbprint');
    expect((await httpGet(name, '/.well-known/acme-challenge/unknown')).status).toBe(404);
  });

  it('is reachable with curl --resolve, trusting only the local root', async () => {
    const name = `shop.${suffix}`;
    const caFile = path.join(tmpdir(), `portico-root-${backend.name}.pem`);
    writeFileSync(caFile, root);
    const { stdout } = await promisify(execFile)('curl', [
      '--silent',
      '--show-error',
      '--resolve',
      `${name}:${edge.httpsPort}:127.0.0.1`,
      '--cacert',
      caFile,
      `https://${name}:${edge.httpsPort}/via-curl`,
    ]);
    expect(JSON.parse(stdout).url).toBe('/via-curl');
  });

  it('refuses oversized request heads (a huge URL or header) with 431 before any lookup', async () => {
    const name = `shop.${suffix}`;
    const longUrl = await httpGet(name, `/${'a'.repeat(20_000)}`);
    const longHeader = await new Promise<number>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: edge.httpPort,
            path: '/',
            headers: { host: name, 'x-big': 'b'.repeat(20_000) },
            agent: false,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject);
    });
    expect(longHeader).toBe(431);
    expect(longUrl.status).toBe(431);
  });

  it('stops serving a removed domain within seconds, on every node', async () => {
    const name = `leaving.${suffix}`;
    await activate(name);
    expect((await httpsGet(name)).status).toBe(200);
    const removedAt = Date.now();
    await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${name}`);
    await waitUntil(
      async () =>
        (await httpsGet(name).then(
          () => 'served',
          () => 'refused',
        )) === 'refused',
    );
    expect(Date.now() - removedAt).toBeLessThan(5000);
    expect((await httpGet(name)).status).toBe(404);
  });
});
