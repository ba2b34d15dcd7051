import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InternalIssuer } from '../../../src/acme/internal-issuer.js';
import { CertIssueError, type IssuedCertificate } from '../../../src/acme/issuer.js';

const DAY_MS = 86_400_000;

/** Serves `certificate` over real TLS on loopback and answers every request with "served". */
async function serve(certificate: IssuedCertificate): Promise<{ port: number; close(): Promise<void> }> {
  const server = https.createServer(
    { cert: certificate.certificatePem, key: certificate.privateKeyPem },
    (_, res) => res.end('served'),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A GET as a browser for `servername` would send it, trusting `ca` only (or the default roots). */
function get(port: number, servername: string, ca?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      { host: '127.0.0.1', port, servername, headers: { host: servername }, ca, agent: false },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve(body));
      },
    );
    request.on('error', reject);
  });
}

describe('InternalIssuer', () => {
  let dataDir: string;
  let issuer: InternalIssuer;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'portico-internal-ca-'));
    issuer = await InternalIssuer.open({ dataDir });
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('issues a certificate that a TLS client trusting only the local root accepts for the domain', async () => {
    const issued = await issuer.issue(['shop.example.test', 'www.shop.example.test']);
    const root = issuer.rootCertificatePem();
    const server = await serve(issued);
    try {
      expect(await get(server.port, 'shop.example.test', root)).toBe('served');
      expect(await get(server.port, 'www.shop.example.test', root)).toBe('served');
      // The same certificate is refused for a name it does not cover, and by a client that does not
      // trust the local root: the acceptance above is the root's and the SAN's doing.
      await expect(get(server.port, 'other.example.test', root)).rejects.toMatchObject({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
      await expect(get(server.port, 'shop.example.test')).rejects.toMatchObject({
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    } finally {
      await server.close();
    }
  });

  it('signs a serverAuth leaf for exactly the names asked, valid 90 days from a slight backdate', async () => {
    const before = Date.now();
    const issued = await issuer.issue(['b.example.test', 'a.example.test', 'b.example.test']);
    const leaf = new X509Certificate(issued.certificatePem);
    const root = new X509Certificate(issuer.rootCertificatePem());

    expect(issued.issuer).toBe('internal');
    expect(issued.certificatePem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(issued.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(leaf.subjectAltName).toBe('DNS:b.example.test, DNS:a.example.test');
    expect(leaf.subject).toBe('CN=b.example.test');
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(issued.privateKeyPem))).toBe(true);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    expect(issued.notBefore.getTime()).toBe(new Date(leaf.validFrom).getTime());
    expect(issued.notAfter.getTime()).toBe(new Date(leaf.validTo).getTime());
    expect(issued.notBefore.getTime()).toBeLessThan(before);
    expect(issued.notBefore.getTime()).toBeGreaterThan(before - DAY_MS);
    expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBeGreaterThan(90 * DAY_MS);
    expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBeLessThan(91 * DAY_MS);
  });

  it('leaves the common name out when the first name is too long for one, keeping it in the SAN', async () => {
    const long = `${'a'.repeat(60)}.example.test`;
    const issued = await issuer.issue([long]);
    const leaf = new X509Certificate(issued.certificatePem);
    expect(leaf.subjectAltName).toBe(`DNS:${long}`);
    expect(leaf.subject).toBeFalsy();
    const server = await serve(issued);
    try {
      expect(await get(server.port, long, issuer.rootCertificatePem())).toBe('served');
    } finally {
      await server.close();
    }
  });

  it('issues one wildcard certificate that covers each name one label below it, and no other', async () => {
    expect(issuer.wildcards).toBe(true);
    const issued = await issuer.issue(['*.apps.example.test']);
    expect(new X509Certificate(issued.certificatePem).subjectAltName).toBe('DNS:*.apps.example.test');
    const root = issuer.rootCertificatePem();
    const server = await serve(issued);
    try {
      expect(await get(server.port, 'shop.apps.example.test', root)).toBe('served');
      expect(await get(server.port, 'blog.apps.example.test', root)).toBe('served');
      for (const name of ['apps.example.test', 'a.b.apps.example.test']) {
        await expect(get(server.port, name, root)).rejects.toMatchObject({
          code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        });
      }
    } finally {
      await server.close();
    }
  });

  it('refuses names that are not normalized hostnames', async () => {
    for (const name of [
      'Shop.Example.test',
      '*.test',
      '*.*.example.test',
      'a.*.example.test',
      '*example.test',
      '127.0.0.1',
      'bad name.test',
      'single',
      'a/b.test',
    ]) {
      await expect(issuer.issue([name])).rejects.toSatisfy(
        (error) =>
          error instanceof CertIssueError && error.code === 'rejected_identifier' && !error.retryable,
      );
    }
    await expect(issuer.issue([])).rejects.toBeInstanceOf(CertIssueError);
  });

  it('keeps the root key readable by its owner only', async () => {
    const key = await stat(path.join(dataDir, 'ca', 'root.key'));
    expect(key.mode & 0o777).toBe(0o600);
    const dir = await stat(path.join(dataDir, 'ca'));
    expect(dir.mode & 0o077).toBe(0);
  });

  it('reuses the root on a later start over the same directory', async () => {
    const again = await InternalIssuer.open({ dataDir });
    expect(again.rootCertificatePem()).toBe(issuer.rootCertificatePem());
    expect(await readFile(path.join(dataDir, 'ca', 'root.pem'), 'utf8')).toBe(issuer.rootCertificatePem());
    const leaf = new X509Certificate((await again.issue(['later.example.test'])).certificatePem);
    expect(leaf.checkIssued(new X509Certificate(issuer.rootCertificatePem()))).toBe(true);
  });

  it('makes one root when several starts race on a fresh directory', async () => {
    const fresh = await mkdtemp(path.join(tmpdir(), 'portico-internal-ca-race-'));
    try {
      const issuers = await Promise.all(
        Array.from({ length: 6 }, () => InternalIssuer.open({ dataDir: fresh })),
      );
      const roots = new Set(issuers.map((each) => each.rootCertificatePem()));
      expect(roots.size).toBe(1);
      expect(await readFile(path.join(fresh, 'ca', 'root.pem'), 'utf8')).toBe([...roots][0]);
      // The losers' staging directories are gone.
      expect(await readdir(fresh)).toEqual(['ca']);
      expect((await readdir(path.join(fresh, 'ca'))).sort()).toEqual(['root.key', 'root.pem']);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('refuses to start on a CA directory that lost its key instead of silently making a new root', async () => {
    const broken = await mkdtemp(path.join(tmpdir(), 'portico-internal-ca-broken-'));
    try {
      await InternalIssuer.open({ dataDir: broken });
      await rm(path.join(broken, 'ca', 'root.key'));
      await expect(InternalIssuer.open({ dataDir: broken })).rejects.toThrow(
        /holds no root\.pem and root\.key/,
      );
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});
