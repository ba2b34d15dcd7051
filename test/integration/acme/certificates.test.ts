import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueJobKey, renewJobKey } from '../../../src/acme/certificates.js';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';

type Rig = Awaited<ReturnType<typeof openCertificateRig>>;

/** Serves `pem`/`key` on loopback and fetches it as `servername`, trusting only `ca`. */
async function fetchOverTls(certificatePem: string, privateKeyPem: string, servername: string, ca: string) {
  const server = https.createServer({ cert: certificatePem, key: privateKeyPem }, (_req, res) =>
    res.end('hello over tls'),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    return await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: (server.address() as AddressInfo).port,
            servername,
            ca,
            path: '/',
            agent: false,
          },
          (res) => {
            let body = '';
            res.on('data', (chunk) => {
              body += chunk;
            });
            res.on('end', () => resolve(body));
          },
        )
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe.each(backends)('certificates from the internal CA on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let rig: Rig;
  let counter = 0;
  const name = () => `www${++counter}.certs-${backend.name}.com`;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    rig = await openCertificateRig(store, dns);
  });
  afterAll(async () => {
    await rig.api.close();
    await dns.close();
    await store.close();
  });

  it('a verified, routed domain gets a certificate without anyone asking and becomes active', async () => {
    const hostname = name();
    await rig.addVerified(hostname);
    expect(await store.findJob(issueJobKey(hostname))).toBeDefined();
    await rig.drain();

    const domain = await rig.read(hostname);
    expect(domain.status).toBe('active');
    expect(domain.certificate).toMatchObject({ status: 'issued', issuer: 'internal', last_error: null });
    expect(
      Date.parse(domain.certificate.not_after) - Date.parse(domain.certificate.not_before),
    ).toBeGreaterThan(89 * 86400_000);
    expect(JSON.stringify(domain)).not.toMatch(/PRIVATE KEY|private_key/);
    expect(rig.events).toEqual(
      expect.arrayContaining([
        { hostname, event: 'domain.verified' },
        { hostname, event: 'certificate.issued' },
        { hostname, event: 'domain.active' },
      ]),
    );

    // At rest the key is ciphertext; the edge gets the PEM back.
    const record = await store.findCertificate(hostname);
    expect(record?.privateKeyEnc).toMatch(/^v1\./);
    expect(record?.privateKeyEnc).not.toContain('PRIVATE KEY');
    const servable = await rig.reader.certificate(hostname);
    if (!servable) throw new Error('nothing to serve');

    // An HTTPS client that trusts only the root the API hands out accepts it for this name.
    const root = await rig.api.call(undefined, 'GET', '/tls/root.pem');
    expect(root.statusCode).toBe(200);
    expect(root.body).toContain('BEGIN CERTIFICATE');
    expect(await fetchOverTls(servable.certificatePem, servable.privateKeyPem, hostname, root.body)).toBe(
      'hello over tls',
    );
  });

  it('renews in the last third of the lifetime (spread over the tenth before it), replacing the certificate in one step', async () => {
    const hostname = name();
    await rig.addVerified(hostname);
    await rig.drain();
    const first = await store.findCertificate(hostname);
    if (!first?.renewAt || !first.notBefore || !first.notAfter) throw new Error('no certificate');
    const lifetime = Date.parse(first.notAfter) - Date.parse(first.notBefore);
    // With a third left at the latest, at a random moment of the tenth of the lifetime before (renewal.ts).
    const left = (Date.parse(first.notAfter) - Date.parse(first.renewAt)) / lifetime;
    expect(left).toBeGreaterThanOrEqual(0.33 - 1e-6);
    expect(left).toBeLessThanOrEqual(0.43 + 1e-6);
    expect(await store.findJob(renewJobKey(hostname))).toMatchObject({ runAt: first.renewAt });

    // Not due yet: nothing changes.
    rig.clock.advance((Date.parse(first.renewAt) - rig.clock.now().getTime()) / 1000 - 60);
    await rig.drain();
    expect((await store.findCertificate(hostname))?.certificatePem).toBe(first.certificatePem);

    rig.clock.advance(61);
    await rig.drain();
    const second = await store.findCertificate(hostname);
    expect(second?.certificatePem).not.toBe(first.certificatePem);
    expect(new X509Certificate(second?.certificatePem ?? '').serialNumber).not.toBe(
      new X509Certificate(first.certificatePem ?? '').serialNumber,
    );
    expect(Date.parse(second?.notAfter ?? '')).toBeGreaterThan(Date.parse(first.notAfter));
    expect((await rig.read(hostname)).status).toBe('active');
    expect(rig.events).toContainEqual({ hostname, event: 'certificate.renewed' });
    expect(await store.findJob(renewJobKey(hostname))).toMatchObject({ runAt: second?.renewAt });
  });

  it('a cert:issue job run again after its certificate was stored (its worker died) orders nothing', async () => {
    const hostname = name();
    await rig.addVerified(hostname);
    await rig.drain();
    const stored = await store.findCertificate(hostname);
    const now = rig.clock.now().toISOString();
    await store.enqueueJob(
      { kind: 'cert:issue', key: issueJobKey(hostname), payload: { hostname }, orgId: null, runAt: now },
      'job_rerun00001',
      now,
    );
    await rig.drain();
    expect(await store.countCertificateOrders(new Date(0).toISOString(), 'placed', hostname)).toBe(1);
    expect((await store.findCertificate(hostname))?.certificatePem).toBe(stored?.certificatePem);
  });

  it('removing a domain stops renewal and drops its certificate', async () => {
    const hostname = name();
    await rig.addVerified(hostname);
    await rig.drain();
    expect(await rig.reader.certificate(hostname)).toBeDefined();
    await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${hostname}`);
    expect(await store.findCertificate(hostname)).toBeUndefined();
    expect(await store.findJob(renewJobKey(hostname))).toBeUndefined();
    expect(await rig.reader.certificate(hostname)).toBeUndefined();
  });

  it('an app’s default hostname is covered by the apps domain’s wildcard, which outlives any one app', async () => {
    const created = (
      await rig.api.call(rig.key, 'POST', '/v1/apps', {
        slug: `cert-app-${backend.name}`,
        meta: { title: 'x' },
      })
    ).json();
    await rig.drain();
    const servable = await rig.reader.certificate(created.default_hostname);
    expect(new X509Certificate(servable?.certificatePem ?? '').subjectAltName).toBe(
      'DNS:*.apps.portico.test',
    );
    // No certificate of its own: the local CA signs wildcards, so one serves every app.
    expect(await store.findCertificate(created.default_hostname)).toBeUndefined();
    await rig.api.call(rig.key, 'DELETE', `/v1/apps/${created.app_id}`);
    expect((await store.findCertificate('*.apps.portico.test'))?.status).toBe('issued');
    expect(await store.findJob(renewJobKey('*.apps.portico.test'))).toBeDefined();
  });

  it('never serves the apps domain’s wildcard for a customer’s domain', async () => {
    const hostname = name();
    await rig.addVerified(hostname);
    // Ownership proven, certificate not issued yet: nothing to serve, the wildcard least of all.
    expect(await rig.reader.certificate(hostname)).toBeUndefined();
    await rig.drain();
    const own = await rig.reader.certificate(hostname);
    expect(new X509Certificate(own?.certificatePem ?? '').subjectAltName).toBe(`DNS:${hostname}`);
  });
});
