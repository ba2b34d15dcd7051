import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTING_PROOF_PATH } from '../../../src/domain/routing-proof.js';
import { createTestCa } from '../../helpers/certs.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import {
  createNetworkNamespace,
  type NetworkNamespace,
  namespaceTestGuard,
} from '../../helpers/network-namespace.js';
import { type ServedPortico, servePortico } from '../../helpers/process.js';
import { waitUntil } from '../../helpers/wait.js';

const KEY = 'pk_customer_cdn_test_0123456789abcdef012345';
const DOMAIN = 'shop.cdn-customer-e2e.com';

/**
 * What runs in the namespace, on a public-looking address: the customer's CDN (ports 80 and 443, the
 * latter with a certificate of the CDN's own CA), which forwards to Portico's edge while `forward`
 * is on (the ACME and routing-proof paths to the edge's HTTP port, the rest to its HTTPS port with
 * the name as SNI, trusting Portico's CA, as a CDN in "full, strict" mode does) and answers with a
 * page of its own otherwise; with `httpsOnly` ("always use HTTPS"), port 80 redirects every request
 * to the same URL over HTTPS; the App's origin (8080);
 * a webhook receiver (8081). Each request is a JSON line on stdout; stdin takes the CDN's settings
 * as JSON lines, and its end ends the script.
 */
const SCRIPT = `
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
const host = process.argv[2];
const tls = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const report = (record) => process.stdout.write(JSON.stringify(record) + '\\n');
let cdn = { forward: false };
createInterface({ input: process.stdin }).on('line', (line) => {
  cdn = JSON.parse(line);
  report({ settings: cdn.forward });
});
process.stdin.on('end', () => process.exit(0));
const forward = (scheme) => (req, res) => {
  const name = (req.headers.host ?? '').split(':')[0];
  report({ server: 'cdn', scheme, url: req.url, host: name });
  if (scheme === 'http' && cdn.httpsOnly) {
    res.writeHead(301, { location: 'https://' + name + req.url }).end();
    return;
  }
  if (!cdn.forward) {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>This page is served by the CDN itself.</p>');
    return;
  }
  const plain = req.url.startsWith('/.well-known/');
  const upstream = (plain ? http : https).request(
    {
      host: cdn.edgeHost,
      port: plain ? cdn.edgeHttp : cdn.edgeHttps,
      method: req.method,
      path: req.url,
      headers: req.headers,
      servername: name,
      ca: cdn.ca,
      agent: false,
    },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (error) => res.writeHead(502).end(String(error)));
  req.pipe(upstream);
};
const proxy = http.createServer(forward('http'));
const proxyTls = https.createServer({ cert: tls.cert, key: tls.key }, forward('https'));
const origin = http.createServer((req, res) => {
  report({ server: 'origin', url: req.url });
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ servedBy: 'the origin' }));
});
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    report({ server: 'receiver', body });
    res.writeHead(204).end();
  });
});
const listen = (server, port) => new Promise((resolve) => server.listen(port, host, resolve));
await Promise.all([listen(proxy, 80), listen(proxyTls, 443), listen(origin, 8080), listen(receiver, 8081)]);
report({ listening: true });
`;

interface Reported {
  server?: 'cdn' | 'origin' | 'receiver';
  scheme?: 'http' | 'https';
  url?: string;
  host?: string;
  body?: string;
  settings?: boolean;
  listening?: boolean;
}

const unsupported = namespaceTestGuard('system/customer-cdn.test.ts', "for the customer's CDN");

/**
 * A customer whose domain sits behind their own CDN (issue 15, item 4): DNS points the name at the
 * CDN's address, not at the platform, so routing cannot be seen in DNS. The worker proves it through
 * the CDN instead (an HTTP request only the platform's edge can answer), the domain gets its
 * certificate and is served, and re-verification never counts the CDN against it; a CDN that stops
 * forwarding is reported (`domain.routing_changed`) and the domain stays served, since only the
 * ownership record keeps or ends a claim (docs/security.md). Shipped defaults: private addresses
 * refused, the internal issuer; Portico listens on the pair's address the namespace reaches.
 */
describe.skipIf(unsupported !== undefined)('a customer behind their own CDN', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-customer-cdn-'));
  let namespace: NetworkNamespace;
  let servers: ChildProcess;
  const reported: Reported[] = [];
  let dns: TestDnsServer;
  let portico: ServedPortico;
  let root = '';
  let edgeHttpsPort = 0;
  let appId = '';

  const api = (method: string, pathname: string, body?: unknown) => portico.call(KEY, method, pathname, body);
  const domainPath = () => `/v1/apps/${appId}/domains/${DOMAIN}`;
  const settings = (forward: boolean, { httpsOnly = false } = {}) => {
    const seen = reported.filter((r) => r.settings !== undefined).length;
    servers.stdin?.write(
      `${JSON.stringify({ forward, httpsOnly, edgeHost: namespace.hostAddress, edgeHttp: edgePorts.http, edgeHttps: edgeHttpsPort, ca: root })}\n`,
    );
    return waitUntil(() => reported.filter((r) => r.settings !== undefined).length > seen);
  };
  const edgePorts = { http: 0 };

  /** GET http://{the CDN}/ for the domain, as a visitor whose DNS gives the CDN's address. */
  const throughCdn = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get(
          { host: namespace.address, port: 80, path: '/', headers: { host: DOMAIN }, agent: false },
          (res) => {
            let body = '';
            res.on('data', (chunk) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        )
        .on('error', reject);
    });

  /** GET https://{the edge}/ for the domain, straight, trusting Portico's CA only. */
  const atEdge = () =>
    new Promise<number>((resolve, reject) => {
      https
        .get(
          {
            host: namespace.hostAddress,
            port: edgeHttpsPort,
            servername: DOMAIN,
            headers: { host: DOMAIN },
            ca: root,
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        )
        .on('error', reject);
    });

  const events = (type: string) =>
    reported
      .filter((r) => r.server === 'receiver')
      .map((r) => JSON.parse(r.body ?? '{}'))
      .filter((event) => event.type === type);

  beforeAll(async () => {
    namespace = await createNetworkNamespace();
    writeFileSync(path.join(dataDir, 'servers.mjs'), SCRIPT);
    // The CDN's own certificate for the name, from a CA Portico does not know (as a real CDN's would
    // be, to Portico): the routing proof over HTTPS must not depend on it.
    const cdnCertificate = await (await createTestCa('The CDN’s own CA')).issue([DOMAIN]);
    writeFileSync(
      path.join(dataDir, 'cdn-tls.json'),
      JSON.stringify({ cert: cdnCertificate.certificatePem, key: cdnCertificate.privateKeyPem }),
    );
    servers = namespace.spawnNode([
      path.join(dataDir, 'servers.mjs'),
      namespace.address,
      path.join(dataDir, 'cdn-tls.json'),
    ]);
    createInterface({ input: servers.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      reported.push(JSON.parse(line));
    });
    await waitUntil(() => reported.some((r) => r.listening));

    dns = await startDnsServer();
    portico = await servePortico({
      PORTICO_DATA_DIR: path.join(dataDir, 'data'),
      // Where the namespace reaches this side of the pair: the CDN forwards to the edge here.
      PORTICO_HOST: namespace.hostAddress,
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_BOOTSTRAP_KEY: KEY,
      // The shortest re-verification interval there is, so scheduled checks run during the test.
      PORTICO_REVERIFY_INTERVAL_SECONDS: '10',
      // The defaults under test.
      PORTICO_ALLOW_PRIVATE_ORIGINS: undefined,
      PORTICO_TLS_ISSUER: undefined,
      PORTICO_APPS_DOMAIN: undefined,
    });
    edgeHttpsPort = await portico.process.edgeHttpsPort();
    edgePorts.http = await portico.process.edgeHttpPort();
    root = await (await fetch(`${portico.url}/tls/root.pem`)).text();
    await settings(true);
  });

  afterAll(async () => {
    await portico?.close();
    await dns?.close();
    servers?.stdin?.end();
    await namespace?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('proves routing through the CDN, issues the certificate and serves the domain', async () => {
    const app = await api('POST', '/v1/apps', {
      slug: 'cdn-shop',
      meta: { title: 'Behind a CDN' },
      origin_url: `http://${namespace.address}:8080/`,
    });
    expect(app.status, JSON.stringify(app.body)).toBe(200);
    appId = app.body.app_id;
    const hook = await api('POST', '/v1/webhooks', {
      url: `http://${namespace.address}:8081/hook`,
      events: ['domain.routing_changed', 'domain.active'],
    });
    expect(hook.status, JSON.stringify(hook.body)).toBe(200);

    const added = await api('POST', `/v1/apps/${appId}/domains`, { domain: DOMAIN });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    dns.set(`_mixpeek-verify.${DOMAIN}`, 'TXT', `mixpeek-site-verification=${added.body.verification_token}`);
    // The name points at the CDN, as Cloudflare's proxied records do: never at the platform.
    dns.set(DOMAIN, 'A', namespace.address);

    const verified = await api('POST', `${domainPath()}/verify`);
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    await waitUntil(async () => (await api('GET', domainPath())).body.status === 'active', 100);
    const domain = (await api('GET', domainPath())).body;
    expect(domain.routing).toMatchObject({ ok: true, via: 'proxy', observed: [`A ${namespace.address}`] });
    expect(domain.verification_errors).toEqual([]);
    // The proof went through the CDN, for this name.
    expect(
      reported.some((r) => r.server === 'cdn' && r.host === DOMAIN && r.url?.startsWith(ROUTING_PROOF_PATH)),
    ).toBe(true);

    const visit = await throughCdn();
    expect(visit.status, visit.body).toBe(200);
    expect(JSON.parse(visit.body)).toEqual({ servedBy: 'the origin' });
    await waitUntil(() => events('domain.active').length === 1, 100);
  });

  it('stays served through ten scheduled re-verifications, none counted against it', async () => {
    // Re-verifications count failures (asked-for checks never do, and run at most one per 10 s):
    // each finds the CDN where DNS says, proves routing through it, and counts nothing, so the next
    // comes after the regular interval (10 s here), not the 10 minutes after a failure.
    const checks = new Set<string>();
    await waitUntil(async () => {
      const domain = (await api('GET', domainPath())).body;
      expect(domain.status).toBe('active');
      expect(domain.routing).toMatchObject({ ok: true, via: 'proxy' });
      expect(domain.reverify_failures).toBe(0);
      expect(Date.parse(domain.next_check_at) - Date.parse(domain.last_checked_at)).toBe(10_000);
      if (!checks.has(domain.last_checked_at)) {
        checks.add(domain.last_checked_at);
        // Served after each of them: a visitor through the CDN gets the origin's page.
        const visit = await throughCdn();
        expect(visit.status, visit.body).toBe(200);
        expect(JSON.parse(visit.body)).toEqual({ servedBy: 'the origin' });
      }
      // The first one seen is the check that made it active.
      return checks.size > 10;
    }, 500);
    expect(events('domain.routing_changed')).toEqual([]);
  }, 180_000);

  it('follows a CDN set to "always use HTTPS" to the same path over HTTPS, as HTTP-01 validation does', async () => {
    await settings(true, { httpsOnly: true });
    const switched = reported.length;
    const before = (await api('GET', domainPath())).body.last_checked_at;
    // An asked-for check (at most one per 10 s: retried until one runs after the switch).
    await waitUntil(async () => {
      await api('POST', `${domainPath()}/verify`);
      return (await api('GET', domainPath())).body.last_checked_at !== before;
    }, 500);
    const domain = (await api('GET', domainPath())).body;
    expect(domain.status).toBe('active');
    expect(domain.routing).toMatchObject({ ok: true, via: 'proxy' });
    const since = reported.slice(switched).filter((r) => r.url?.startsWith(ROUTING_PROOF_PATH));
    // Asked over HTTP, redirected, and proven over HTTPS through the CDN's own certificate.
    expect(since.some((r) => r.scheme === 'http')).toBe(true);
    expect(since.some((r) => r.scheme === 'https' && r.host === DOMAIN)).toBe(true);
    expect(events('domain.routing_changed')).toEqual([]);
    await settings(true);
  });

  it('reports a CDN that stops forwarding, and keeps serving the domain', async () => {
    await settings(false);
    // The next scheduled check, within 10 s.
    let checked = (await api('GET', domainPath())).body;
    await waitUntil(async () => {
      checked = (await api('GET', domainPath())).body;
      return checked.routing.ok === false;
    }, 200);
    expect(checked.status).toBe('active');
    expect(checked.routing).toMatchObject({ ok: false, via: null });
    const [error, ...more] = checked.verification_errors;
    expect(more).toEqual([]);
    expect(error.code).toBe('a_mismatch');
    expect(error.message).toContain("did not reach the platform's edge");

    await waitUntil(() => events('domain.routing_changed').length === 1, 100);
    const [event] = events('domain.routing_changed');
    expect(event.data).toMatchObject({ domain: DOMAIN, status: 'active', routing: { ok: false, via: null } });
    // Served still: the customer may be moving the CDN, and only the ownership record ends a claim.
    expect(await atEdge()).toBe(200);
  });
});
