import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, verifySignature } from '../../../src/events/webhooks.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import {
  createNetworkNamespace,
  type NetworkNamespace,
  namespaceTestGuard,
} from '../../helpers/network-namespace.js';
import { type ServedPortico, servePortico } from '../../helpers/process.js';
import { waitUntil } from '../../helpers/wait.js';

const KEY = 'pk_public_origin_test_0123456789abcdef01234';
const DOMAIN = 'shop.public-origin-e2e.com';

/**
 * The servers in the namespace: an origin answering with what it received, and a webhook receiver
 * answering 204. Each request is reported as a JSON line on stdout; the script exits when its
 * stdin closes, so it cannot outlive the test.
 */
const SERVERS_SCRIPT = `
import http from 'node:http';
const host = process.argv[2];
const report = (record) => process.stdout.write(JSON.stringify(record) + '\\n');
const listen = (server) => new Promise((resolve) => server.listen(0, host, () => resolve(server.address().port)));
const origin = http.createServer((req, res) => {
  report({ server: 'origin', url: req.url, headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ servedBy: 'the origin in the namespace', url: req.url, headers: req.headers }));
});
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    report({ server: 'receiver', url: req.url, headers: req.headers, body });
    res.writeHead(204).end();
  });
});
report({ listening: { origin: await listen(origin), receiver: await listen(receiver) } });
process.stdin.on('end', () => process.exit(0)).resume();
`;

interface Reported {
  server?: 'origin' | 'receiver';
  url?: string;
  headers?: Record<string, string>;
  body?: string;
  listening?: { origin: number; receiver: number };
}

const unsupported = namespaceTestGuard(
  'system/public-origin.test.ts',
  'to test the shipped defaults end to end',
);

/**
 * The shipped defaults end to end: `portico serve` as a real process with
 * `PORTICO_ALLOW_PRIVATE_ORIGINS` unset and the internal issuer, an App whose origin is on a
 * public-looking address (a network namespace on 203.0.113.0/24, reached over a veth pair, as an
 * origin on the internet is reached over a route), served through the edge to a real TLS client;
 * and a webhook receiver there that gets a signed event. Private origins stay refused.
 */
describe.skipIf(unsupported !== undefined)('the shipped defaults with a public origin', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-public-origin-'));
  let namespace: NetworkNamespace | undefined;
  let servers: ChildProcess;
  const reported: Reported[] = [];
  let ports: { origin: number; receiver: number };
  let dns: TestDnsServer;
  let portico: ServedPortico;
  let edgeHttpsPort: number;
  /** The App the first test creates; the webhook's event is one of its domains. */
  let appId = '';

  const api = (method: string, pathname: string, body?: unknown) => portico.call(KEY, method, pathname, body);

  beforeAll(async () => {
    namespace = await createNetworkNamespace();
    writeFileSync(path.join(dataDir, 'servers.mjs'), SERVERS_SCRIPT);
    servers = namespace.spawnNode([path.join(dataDir, 'servers.mjs'), namespace.address]);
    createInterface({ input: servers.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      reported.push(JSON.parse(line));
    });
    await waitUntil(() => reported.some((record) => record.listening !== undefined));
    ports = reported.find((record) => record.listening)?.listening as typeof ports;

    dns = await startDnsServer();
    portico = await servePortico({
      PORTICO_DATA_DIR: path.join(dataDir, 'data'),
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_BOOTSTRAP_KEY: KEY,
      // The defaults under test: removed even if the environment running the tests sets them.
      PORTICO_ALLOW_PRIVATE_ORIGINS: undefined,
      PORTICO_TLS_ISSUER: undefined,
      PORTICO_APPS_DOMAIN: undefined,
    });
    edgeHttpsPort = await portico.process.edgeHttpsPort();
  });

  afterAll(async () => {
    await portico?.close();
    await dns?.close();
    servers?.stdin?.end();
    await namespace?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** GET over HTTPS to the edge on 127.0.0.1, for `hostname` (SNI and Host), trusting `ca` only. */
  const edgeGet = (hostname: string, ca: string, pathname: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: edgeHttpsPort,
            servername: hostname,
            headers: { host: hostname },
            path: pathname,
            ca,
            agent: false,
          },
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

  it('serves an App whose origin is on a public IPv4 address through the edge', async () => {
    const originUrl = `http://${namespace?.address}:${ports.origin}/`;
    const created = await api('POST', '/v1/apps', {
      slug: 'public-origin',
      meta: { title: 'Public origin' },
      origin_url: originUrl,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body.origin_url).toBe(originUrl);
    appId = created.body.app_id;
    const hostname: string = created.body.default_hostname;
    expect(hostname).toBe('public-origin.apps.localhost');

    const root = await (await fetch(`${portico.url}/tls/root.pem`)).text();
    // The worker issues the default hostname's certificate from the local CA: until then the
    // handshake fails.
    let answer: { status: number; body: string } | undefined;
    await waitUntil(async () => {
      answer = await edgeGet(hostname, root, '/catalog?page=2').catch(() => undefined);
      return answer !== undefined;
    }, 100);
    expect(answer?.status, answer?.body).toBe(200);
    const served = JSON.parse(answer?.body ?? '{}');
    expect(served.servedBy).toBe('the origin in the namespace');
    expect(served.url).toBe('/catalog?page=2');
    expect(served.headers['x-forwarded-host']).toBe(hostname);
    const seen = reported.filter((record) => record.server === 'origin');
    expect(seen.map((record) => record.url)).toEqual(['/catalog?page=2']);
  });

  it('delivers a signed webhook to a receiver on a public IPv4 address', async () => {
    const url = `http://${namespace?.address}:${ports.receiver}/hook`;
    const webhook = await api('POST', '/v1/webhooks', { url, events: ['domain.verified'] });
    expect(webhook.status, JSON.stringify(webhook.body)).toBe(200);
    const secret: string = webhook.body.secret;

    // The event: a domain of the App verified against the loopback DNS server.
    const added = await api('POST', `/v1/apps/${appId}/domains`, { domain: DOMAIN });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    dns.set(`_mixpeek-verify.${DOMAIN}`, 'TXT', `mixpeek-site-verification=${added.body.verification_token}`);
    dns.set(DOMAIN, 'CNAME', added.body.cname_target);
    const verified = await api('POST', `/v1/apps/${appId}/domains/${DOMAIN}/verify`);
    expect(verified.body.status).toBe('verified');

    await waitUntil(() => reported.some((record) => record.server === 'receiver'), 100);
    const [delivery, ...more] = reported.filter((record) => record.server === 'receiver');
    expect(more).toEqual([]);
    expect(delivery?.url).toBe('/hook');
    const body = delivery?.body ?? '';
    expect(JSON.parse(body)).toMatchObject({ type: 'domain.verified', data: { domain: DOMAIN } });
    const signature = delivery?.headers?.[SIGNATURE_HEADER] ?? '';
    expect(verifySignature(secret, signature, body, Math.floor(Date.now() / 1000))).toBe(true);

    await waitUntil(async () => {
      const log = await api('GET', `/v1/webhooks/${webhook.body.webhook_id}/deliveries`);
      return log.body.results[0]?.status === 'delivered';
    }, 100);
  });

  it('still refuses private origins and webhook receivers', async () => {
    for (const origin_url of ['http://10.0.0.1/', 'http://127.0.0.1:8080/', 'http://[::ffff:7f00:1]/']) {
      const refused = await api('POST', '/v1/apps', {
        slug: 'private-origin',
        meta: { title: 'x' },
        origin_url,
      });
      expect(refused.status, origin_url).toBe(400);
      expect(refused.body.error.code, origin_url).toBe('origin_url_private');
    }
    const refused = await api('POST', '/v1/webhooks', { url: 'http://10.0.0.1/hook' });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('webhook_url_private');
  });
});
