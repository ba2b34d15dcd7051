import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHALLENGE_ZONE,
  type DelegatedDns01,
  type Dns01Ca,
  httpsGet,
  loopbackAddress,
  publishDelegatedDomain,
  startDelegatedDns01,
} from '../../helpers/delegated-dns01.js';
import { runPortico, type ServedPortico } from '../../helpers/process.js';
import { waitUntil } from '../../helpers/wait.js';

const KEY = 'pk_dns01_delegation_test_0123456789abcdef0';
const ZONE = CHALLENGE_ZONE;
const DOMAIN = 'shop.moving-in.com';
/**
 * Where the domain points while it moves in: its old host, on a loopback address of its own, never
 * the edge. Pebble's HTTP-01 and TLS-ALPN-01 port there is the tripwire.
 */
const OLD_HOST = loopbackAddress();

/**
 * Certificates before traffic (issue 15, items 1 to 3), as `portico serve` runs them with the `dns`
 * role: the customer delegates `_acme-challenge.{domain}` to Portico's challenge zone once, and the
 * certificate is ordered over DNS-01 as soon as ownership is proven, while the domain still points
 * at its old host. Pebble asks the loopback DNS server, which holds the customer's zone and follows
 * the `_acme-challenge` CNAME into the challenge zone by asking Portico's dns role (`delegate`), as
 * a recursive resolver follows the zone's NS records. Pebble's HTTP-01 and TLS-ALPN-01 port at the
 * old host is a tripwire that counts connections: none may come. Then the customer points the name at the edge, and the first HTTPS request gets a
 * certificate that verifies.
 */
describe('a certificate issued over a delegated DNS-01 challenge before the switch', () => {
  let setup: DelegatedDns01;
  let ca: Dns01Ca;
  let portico: ServedPortico;
  let origin: http.Server;
  let originPort = 0;

  const api = (method: string, pathname: string, body?: unknown) => portico.call(KEY, method, pathname, body);

  beforeAll(async () => {
    origin = http.createServer((req, res) =>
      res.end(JSON.stringify({ servedBy: 'origin', host: req.headers['x-forwarded-host'] })),
    );
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originPort = (origin.address() as net.AddressInfo).port;
    setup = await startDelegatedDns01({ PORTICO_BOOTSTRAP_KEY: KEY }, { tripwireHost: OLD_HOST });
    ({ portico } = setup);
    ca = setup;
  });

  afterAll(async () => {
    await setup?.close();
    origin?.close();
  });

  it('asks for the delegation, issues over DNS-01 while the name points elsewhere, and serves from the first request', async () => {
    const app = await api('POST', '/v1/apps', {
      slug: 'moving-in',
      meta: { title: 'Moving in' },
      origin_url: `http://127.0.0.1:${originPort}/`,
    });
    expect(app.status, JSON.stringify(app.body)).toBe(200);
    const appId = app.body.app_id;
    const added = await api('POST', `/v1/apps/${appId}/domains`, { domain: DOMAIN });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    const records: { type: string; name: string; value: string; purpose: string }[] = added.body.dns_records;
    expect(records.map((r) => r.purpose)).toEqual(['ownership', 'routing', 'certificate']);
    const delegation = records[2];
    expect(delegation).toMatchObject({ type: 'CNAME', name: `_acme-challenge.${DOMAIN}` });
    expect(delegation?.value).toMatch(new RegExp(`^[a-z2-7]{20}\\.${ZONE.replaceAll('.', '\\.')}$`));

    // `portico domains check` checks the delegation like the other records.
    const check = async () => {
      const run = await runPortico(
        ['domains', 'check', 'moving-in', DOMAIN, '--dns', ca.dns.address, '--json'],
        {
          PORTICO_URL: portico.url,
          PORTICO_API_KEY: KEY,
        },
      );
      return JSON.parse(run.stdout).records.find((r: { purpose: string }) => r.purpose === 'certificate');
    };
    expect(await check()).toMatchObject({
      name: `_acme-challenge.${DOMAIN}`,
      expected: [`CNAME ${delegation?.value}`],
      ok: false,
      errors: [expect.objectContaining({ code: 'delegation_not_found' })],
    });

    // The customer's DNS: ownership, the delegation, and the name still at its old host.
    publishDelegatedDomain(ca.dns, added.body, OLD_HOST);
    expect(await check()).toMatchObject({ ok: true, found: [`CNAME ${delegation?.value}`] });

    const verified = await api('POST', `/v1/apps/${appId}/domains/${DOMAIN}/verify`);
    expect(verified.body.status, JSON.stringify(verified.body)).toBe('verified');
    // Routing is checked and reported, and is no condition for the certificate.
    expect(verified.body.routing).toMatchObject({ ok: false, observed: [`A ${OLD_HOST}`] });

    const path = `/v1/apps/${appId}/domains/${DOMAIN}`;
    await waitUntil(async () => {
      const domain = (await api('GET', path)).body;
      if (domain.certificate?.status === 'failed' || domain.certificate?.last_error) {
        throw new Error(`issuance failed: ${JSON.stringify(domain.certificate)}\n${ca.pebble.output()}`);
      }
      return domain.status === 'active';
    }, 200);
    const active = (await api('GET', path)).body;
    expect(active.certificate).toMatchObject({ status: 'issued', issuer: ca.pebble.directoryUrl });
    // Validated by DNS-01 (the loopback server holds no TXT at the label: only the dns role could
    // answer it), and the CA never reached for the edge.
    expect(ca.tripwire.connections()).toBe(0);

    // The switch: the name now points at the edge. The first visitor gets a valid certificate.
    ca.dns.set(DOMAIN, 'CNAME', added.body.cname_target);
    const { status, body, certificate } = await httpsGet({
      host: '127.0.0.1',
      port: await portico.process.edgeHttpsPort(),
      servername: DOMAIN,
      ca: await ca.pebble.rootPem(),
    });
    expect(status, body).toBe(200);
    expect(JSON.parse(body)).toEqual({ servedBy: 'origin', host: DOMAIN });
    expect(certificate.subjectAltName).toBe(`DNS:${DOMAIN}`);
  });
});
