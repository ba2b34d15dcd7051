/**
 * The edge through real clients: TLS handshakes by SNI (node:tls, curl), HTTP requests (undici,
 * node:https where a test needs a Host other than the SNI name), a WebSocket (ws), against real
 * origins on loopback. The three sources are in-memory maps: the seams the store fills in.
 */
import { execFile } from 'node:child_process';
import { createHash, type X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls, { type PeerCertificate } from 'node:tls';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Route } from '../../../src/domain/serving.js';
import { type Edge, startEdge } from '../../../src/edge/server.js';
import type {
  CertificateSource,
  ChallengeSource,
  EdgeCertificate,
  RouteSource,
} from '../../../src/edge/sources.js';
import { createLogger } from '../../../src/logger.js';
import { createTestCa, type TestCa } from '../../helpers/certs.js';
import {
  closedPort,
  type OriginProcess,
  patternChunk,
  type ReceivedRequest,
  startOrigin,
  startOriginProcess,
  type TestOrigin,
} from '../../helpers/origin.js';
import { refusedWith, TLS_ALERT, tlsExchange } from '../../helpers/tls-wire.js';

const logger = createLogger('silent');
const MB = 1024 * 1024;
/** The streaming tests' upload and download. */
const BODY = 100 * MB;

/** The store's stand-in: what is served, with its certificate, and pending ACME challenges. */
class MemorySources implements RouteSource, CertificateSource, ChallengeSource {
  readonly routes = new Map<string, Route>();
  readonly certificates = new Map<string, EdgeCertificate>();
  readonly challenges = new Map<string, string>();
  /** TLS-ALPN-01 key authorizations by hostname. */
  readonly tlsAlpnChallenges = new Map<string, string>();
  /** Hostnames whose TLS-ALPN-01 answer was asked for, in order. */
  readonly tlsAlpnLookups: string[] = [];

  /** Names looked up, in order. */
  readonly lookups: string[] = [];
  private hold: Promise<void> | undefined;

  async route(hostname: string) {
    this.lookups.push(hostname);
    await this.hold;
    return this.routes.get(hostname);
  }

  /** Makes route lookups wait (a slow database) until the returned function is called. */
  holdRoutes(): () => void {
    let release = () => {};
    this.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      this.hold = undefined;
      release();
    };
  }

  async certificate(hostname: string) {
    return this.certificates.get(hostname);
  }

  async keyAuthorization(token: string) {
    return this.challenges.get(token);
  }

  async tlsAlpnKeyAuthorization(hostname: string) {
    this.tlsAlpnLookups.push(hostname);
    return this.tlsAlpnChallenges.get(hostname);
  }

  async serve(ca: TestCa, hostname: string, route: Omit<Route, 'hostname'>): Promise<void> {
    this.routes.set(hostname, { hostname, ...route });
    this.certificates.set(hostname, await ca.issue([hostname]));
  }

  remove(hostname: string): void {
    this.routes.delete(hostname);
    this.certificates.delete(hostname);
  }
}

/** Every name resolves to 127.0.0.1, so clients use real names (SNI, Host) against loopback. */
const loopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

/** Polls until `condition` holds: waiting for an event without guessing how long it takes. */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** A neutral page names no tenant: no hostname (every test name ends in .test), app or origin. */
function expectNeutral(body: string): void {
  expect(body).toMatch(/^<!doctype html>/);
  expect(body).not.toMatch(/\.test|app_|127\.0\.0\.1|origin/i);
}

let ca: TestCa;
let caDir: string;
let caFile: string;
let origin: TestOrigin;
let sources: MemorySources;
let edge: Edge;
let client: Agent;

beforeAll(async () => {
  ca = await createTestCa();
  caDir = await mkdtemp(path.join(tmpdir(), 'portico-edge-'));
  caFile = path.join(caDir, 'ca.pem');
  await writeFile(caFile, ca.certificatePem);
  origin = await startOrigin();
  sources = new MemorySources();
  await sources.serve(ca, 'app.test', { appId: 'app_1', originUrl: origin.url });
  await sources.serve(ca, 'other.test', { appId: 'app_2', originUrl: origin.url });
  await sources.serve(ca, 'www.app.test', { appId: 'app_1', originUrl: origin.url, redirectTo: 'app.test' });
  await sources.serve(ca, 'prefixed.test', { appId: 'app_3', originUrl: `${origin.url}/base/` });
  await sources.serve(ca, 'no-origin.test', { appId: 'app_4', originUrl: null });
  await sources.serve(ca, 'down.test', {
    appId: 'app_5',
    originUrl: `http://127.0.0.1:${await closedPort()}`,
  });
  // A certificate still in the store for a name whose route is already gone.
  sources.certificates.set('cert-only.test', await ca.issue(['cert-only.test']));
  edge = await startEdge({
    host: '127.0.0.1',
    appsDomain: 'apps.test',
    httpPort: 0,
    httpsPort: 0,
    routes: sources,
    certificates: sources,
    challenges: sources,
    allowPrivateOrigins: true,
    logger,
    connectTimeoutMs: 2_000,
    idleTimeoutMs: 1_000,
  });
  client = new Agent({ connect: { ca: ca.certificatePem, lookup: loopback } });
});

afterAll(async () => {
  await client?.close();
  await edge?.close();
  await origin?.close();
  if (caDir) await rm(caDir, { recursive: true, force: true });
});

const httpsUrl = (hostname: string, target = '/') => `https://${hostname}:${edge.httpsPort}${target}`;
const httpUrl = (hostname: string, target = '/') => `http://${hostname}:${edge.httpPort}${target}`;

async function get(url: string, options: Parameters<typeof request>[1] = {}) {
  const response = await request(url, { dispatcher: client, ...options });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

/**
 * curl against the edge, names resolved to loopback, trusting the test CA. The status is the last
 * line of the output (`--write-out`), after the body or what `args` ask to write.
 */
async function curl(args: string[]): Promise<{ body: string; status: string }> {
  const resolve = ['app.test', 'stream.test'].map((name) => [
    '--resolve',
    `${name}:${edge.httpsPort}:127.0.0.1`,
  ]);
  const { stdout } = await promisify(execFile)('curl', [
    '--silent',
    '--show-error',
    ...resolve.flat(),
    '--cacert',
    caFile,
    '--write-out',
    '\n%{http_code}',
    ...args,
  ]);
  const end = stdout.lastIndexOf('\n');
  return { body: stdout.slice(0, end), status: stdout.slice(end + 1) };
}

/** A TLS handshake by SNI name; resolves with the certificate the edge presented. */
function handshake(
  servername: string | undefined,
  options: tls.ConnectionOptions = {},
): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: edge.httpsPort,
      servername,
      ca: ca.certificatePem,
      ...options,
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/**
 * A handshake accepting any certificate, read off the wire (tls-wire.ts): how the edge refused it,
 * if it did, as a protocol alert rather than the client runtime's error string for it.
 */
function refusal(servername: string | undefined, options: tls.ConnectionOptions = {}) {
  return tlsExchange({
    host: '127.0.0.1',
    port: edge.httpsPort,
    servername,
    rejectUnauthorized: false,
    ...options,
  });
}
const NO_CERTIFICATE = refusedWith(TLS_ALERT.handshake_failure);
const NO_PROTOCOL = refusedWith(TLS_ALERT.no_application_protocol);

/** The TLS 1.3 cipher suite a client offering `ciphers` (in its order) agrees with the edge. */
function negotiatedCipher(ciphers?: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: edge.httpsPort,
      servername: 'app.test',
      ca: ca.certificatePem,
      ...(ciphers ? { ciphers } : {}),
    });
    socket.once('secureConnect', () => {
      resolve(socket.getCipher().standardName);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** An HTTPS request whose Host and SNI name are set apart, with headers undici would not send. */
function rawHttps(servername: string, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: edge.httpsPort,
          servername,
          ca: ca.certificatePem,
          path: '/',
          headers,
          agent: false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

describe('TLS by SNI', () => {
  it('presents each served name its own certificate', async () => {
    expect((await handshake('app.test')).subjectaltname).toBe('DNS:app.test');
    expect((await handshake('other.test')).subjectaltname).toBe('DNS:other.test');
    expect((await handshake('APP.test')).subjectaltname).toBe('DNS:app.test');
  });

  it('presents no certificate at all for an unknown name or no SNI', async () => {
    // Even a client that would accept any certificate gets none: the handshake itself fails.
    expect(await refusal('nobody.test')).toMatchObject(NO_CERTIFICATE);
    expect(await refusal(undefined)).toMatchObject(NO_CERTIFICATE);
  });

  it('prefers AES-128-GCM, gives ChaCha20 to clients that list it first, and takes what a client can do', async () => {
    // Node's client lists AES-256-GCM first: the edge's own order decides.
    expect(await negotiatedCipher()).toBe('TLS_AES_128_GCM_SHA256');
    expect(
      await negotiatedCipher('TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384'),
    ).toBe('TLS_CHACHA20_POLY1305_SHA256');
    expect(await negotiatedCipher('TLS_AES_256_GCM_SHA384')).toBe('TLS_AES_256_GCM_SHA384');
  });

  it('is trusted by curl', async () => {
    const { body, status } = await curl([httpsUrl('app.test', '/via-curl?x=1')]);
    expect(status).toBe('200');
    expect(JSON.parse(body)).toMatchObject({ url: '/via-curl?x=1' });
  });
});

describe('routing', () => {
  it('proxies an active domain to its origin, with forwarding headers and the origin as Host', async () => {
    const response = await get(httpsUrl('app.test', '/echo?a=1&b=2'), { method: 'PUT', body: 'hi' });
    expect(response.status).toBe(200);
    const seen = JSON.parse(response.body) as ReceivedRequest;
    expect(seen.method).toBe('PUT');
    expect(seen.url).toBe('/echo?a=1&b=2');
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe(`app.test:${edge.httpsPort}`);
    expect(seen.headers.forwarded).toBe(`for=127.0.0.1;host="app.test:${edge.httpsPort}";proto=https`);
    expect(seen.headers['content-length']).toBe('2');
  });

  it("strips hop-by-hop headers both ways, appends to X-Forwarded-For, replaces the client's Forwarded", async () => {
    const response = await rawHttps('app.test', {
      host: 'app.test',
      connection: 'keep-alive, X-Client-Hop',
      'x-client-hop': 'secret',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic c2VjcmV0',
      te: 'trailers',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'spoofed.example',
      forwarded: 'for=203.0.113.7',
      'x-end-to-end': 'kept',
    });
    expect(response.status).toBe(200);
    const seen = JSON.parse(response.body) as ReceivedRequest;
    for (const name of ['x-client-hop', 'keep-alive', 'proxy-authorization', 'te']) {
      expect(seen.headers[name]).toBeUndefined();
    }
    expect(seen.headers.connection).not.toMatch(/x-client-hop/i);
    expect(seen.headers['x-end-to-end']).toBe('kept');
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe('app.test');
    expect(seen.headers.forwarded).toBe('for=127.0.0.1;host=app.test;proto=https');
    // The origin listed X-Origin-Hop in its Connection header: it stops at the edge.
    expect(response.headers['x-origin-hop']).toBeUndefined();
    expect(response.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  });

  it("prefixes the origin_url's path", async () => {
    const response = await get(httpsUrl('prefixed.test', '/x?y=1'));
    expect((JSON.parse(response.body) as ReceivedRequest).url).toBe('/base/x?y=1');
  });

  it('answers 421 when the Host is not the name the TLS connection was made for', async () => {
    const response = await rawHttps('app.test', { host: 'other.test' });
    expect(response.status).toBe(421);
    expectNeutral(response.body);
  });

  it('redirects a non-primary domain to the primary with 308, keeping path and query', async () => {
    const response = await get(httpsUrl('www.app.test', '/shop/cart?item=42&q=a%20b'), { method: 'POST' });
    expect(response.status).toBe(308);
    expect(response.headers.location).toBe(`https://app.test:${edge.httpsPort}/shop/cart?item=42&q=a%20b`);
  });

  it("reads a new name's route once for its first handshake and the requests that follow", async () => {
    await sources.serve(ca, 'fresh.test', { appId: 'app_6', originUrl: origin.url });
    const before = sources.lookups.filter((name) => name === 'fresh.test').length;
    expect((await get(httpsUrl('fresh.test', '/first'))).status).toBe(200);
    expect((await get(httpsUrl('fresh.test', '/second'))).status).toBe(200);
    expect(sources.lookups.filter((name) => name === 'fresh.test').length - before).toBe(1);
  });

  it('presents no certificate for a name whose certificate outlived its route', async () => {
    // The source still has a certificate for the name: the edge asks for one only with a route.
    expect(await refusal('cert-only.test')).toMatchObject(NO_CERTIFICATE);
  });

  it('answers 502 for an App without an origin', async () => {
    const response = await get(httpsUrl('no-origin.test'));
    expect(response.status).toBe(502);
    expectNeutral(response.body);
  });
});

describe('plain HTTP', () => {
  it('answers an ACME challenge for any Host, as text/plain', async () => {
    sources.challenges.set('tok-EN_123', 'tok-EN_123.thumbprint');
    const response = await get(httpUrl('pending.test', '/.well-known/acme-challenge/tok-EN_123'));
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(response.body).toBe('tok-EN_123.thumbprint');
  });

  it('answers 404 for an unknown challenge token', async () => {
    const response = await get(httpUrl('pending.test', '/.well-known/acme-challenge/unknown'));
    expect(response.status).toBe(404);
    expectNeutral(response.body);
  });

  it('redirects a served host to HTTPS with 308, keeping the HTTPS port, path and query', async () => {
    const response = await get(httpUrl('app.test', '/a/b?c=1'));
    expect(response.status).toBe(308);
    expect(response.headers.location).toBe(`https://app.test:${edge.httpsPort}/a/b?c=1`);
  });

  it('answers an unknown host with a 404 that names nobody', async () => {
    const response = await get(httpUrl('nobody.test', '/'));
    expect(response.status).toBe(404);
    expectNeutral(response.body);
  });
});

describe('TLS-ALPN-01 challenges', () => {
  /** The acmeIdentifier extension of RFC 8737 section 6.1. */
  const ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';
  const keyAuthorizations = {
    // A served name renewing its certificate, and a name the CA validates before its first one.
    'app.test': 'renewToken_1.thumbprint-of-the-account-key',
    'first.test': 'firstToken-2.thumbprint-of-the-account-key',
  };

  /** A handshake offering `protocols`, accepting any certificate; the certificate and protocol agreed. */
  function alpnHandshake(
    servername: string,
    protocols: string[] | undefined,
    options: tls.ConnectionOptions = {},
  ): Promise<{ certificate: X509Certificate; protocol: string | false }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: edge.httpsPort,
        servername,
        ALPNProtocols: protocols,
        rejectUnauthorized: false,
        ...options,
      });
      socket.once('secureConnect', () => {
        const certificate = socket.getPeerX509Certificate();
        const protocol = socket.alpnProtocol ?? false;
        socket.destroy();
        if (certificate === undefined) reject(new Error('no certificate'));
        else resolve({ certificate, protocol });
      });
      socket.once('error', reject);
    });
  }

  /** What RFC 8737 asks the CA to check of the certificate for `name`; the extension's DER value. */
  function expectChallengeCertificate(certificate: X509Certificate, name: string, keyAuthorization: string) {
    expect(certificate.subjectAltName).toBe(`DNS:${name}`);
    expect(certificate.checkIssued(certificate)).toBe(true);
    const extension = new x509.X509Certificate(certificate.raw).getExtension(ACME_IDENTIFIER);
    expect(extension?.critical).toBe(true);
    // Authorization ::= OCTET STRING (SIZE (32)): the SHA-256 digest of the key authorization.
    const digest = createHash('sha256').update(keyAuthorization).digest();
    expect(Buffer.from(extension?.value ?? new ArrayBuffer(0))).toEqual(
      Buffer.concat([Buffer.from([0x04, 0x20]), digest]),
    );
  }

  beforeAll(() => {
    for (const [name, keyAuthorization] of Object.entries(keyAuthorizations)) {
      sources.tlsAlpnChallenges.set(name, keyAuthorization);
    }
  });
  afterAll(() => sources.tlsAlpnChallenges.clear());

  it('presents the challenge certificate to a client offering acme-tls/1, served name or not', async () => {
    for (const [name, keyAuthorization] of Object.entries(keyAuthorizations)) {
      const { certificate, protocol } = await alpnHandshake(name, ['acme-tls/1']);
      expect(protocol, name).toBe('acme-tls/1');
      expectChallengeCertificate(certificate, name, keyAuthorization);
    }
    // The SNI name is normalized as for any handshake.
    const upper = await alpnHandshake('FIRST.test', ['acme-tls/1']);
    expectChallengeCertificate(upper.certificate, 'first.test', keyAuthorizations['first.test']);
  });

  it('keeps presenting the real certificate, or none, to every other client of the same names', async () => {
    const agreed = (protocols: string[] | undefined) =>
      protocols === undefined ? false : protocols.includes('h2') ? 'h2' : 'http/1.1';
    for (const protocols of [
      undefined,
      ['http/1.1'],
      ['h2', 'http/1.1'],
      ['http/1.1', 'acme-tls/1'],
      ['h2', 'acme-tls/1'],
    ]) {
      const label = JSON.stringify(protocols);
      // Verified against the test CA: the served certificate, not the self-signed challenge one.
      const { certificate, protocol } = await alpnHandshake('app.test', protocols, {
        rejectUnauthorized: true,
        ca: ca.certificatePem,
      });
      expect(certificate.subjectAltName, label).toBe('DNS:app.test');
      expect(protocol, label).toBe(agreed(protocols));
      // A name not served yet has no certificate for them.
      expect(await refusal('first.test', { ALPNProtocols: protocols }), label).toMatchObject(NO_CERTIFICATE);
    }
    // A client offering only protocols the edge does not speak is refused, as before.
    expect(await refusal('app.test', { ALPNProtocols: ['h3', 'spdy/3.1'] })).toMatchObject(NO_PROTOCOL);
    expect((await get(httpsUrl('app.test', '/during-challenge'))).status).toBe(200);
  });

  it('presents nothing for a name without a pending challenge, and stops once it is removed', async () => {
    for (const name of ['other.test', 'nobody.test']) {
      expect(await refusal(name, { ALPNProtocols: ['acme-tls/1'] }), name).toMatchObject(NO_CERTIFICATE);
    }
    sources.tlsAlpnChallenges.set('removed.test', 'removedToken.thumbprint');
    const answered = await alpnHandshake('removed.test', ['acme-tls/1']);
    expectChallengeCertificate(answered.certificate, 'removed.test', 'removedToken.thumbprint');
    // The answer is read on every challenge handshake: once removed, it is never presented again.
    sources.tlsAlpnChallenges.delete('removed.test');
    expect(await refusal('removed.test', { ALPNProtocols: ['acme-tls/1'] })).toMatchObject(NO_CERTIFICATE);
  });

  it('refuses acme-tls/1 over TLS 1.2, where the certificate is chosen before ALPN', async () => {
    expect(await refusal('app.test', { ALPNProtocols: ['acme-tls/1'], maxVersion: 'TLSv1.2' })).toMatchObject(
      NO_PROTOCOL,
    );
    // TLS 1.2 for everything else is unchanged.
    const { certificate } = await alpnHandshake('app.test', ['http/1.1'], { maxVersion: 'TLSv1.2' });
    expect(certificate.subjectAltName).toBe('DNS:app.test');
  });

  it('never answers or proxies a request sent over a challenge connection, and closes it', async () => {
    const received = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: edge.httpsPort,
        servername: 'app.test',
        ALPNProtocols: ['acme-tls/1'],
        rejectUnauthorized: false,
      });
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        data += chunk;
      });
      socket.once('secureConnect', () => {
        socket.write('GET /over-acme-tls HTTP/1.1\r\nHost: app.test\r\n\r\n');
      });
      // Closed by the edge on the request: the client only waits for it.
      socket.once('close', () => resolve(data));
      socket.once('error', reject);
    });
    expect(received).toBe('');
    expect(origin.requests.map((seen) => seen.url)).not.toContain('/over-acme-tls');
  });
});

describe('streaming', () => {
  let remoteOrigin: OriginProcess;
  let uploadFile: string;

  beforeAll(async () => {
    // Client (curl) and origin run in other processes: this one holds only the edge, so its RSS is
    // the edge's own. A relay that buffered a body would grow it by the body's size.
    remoteOrigin = await startOriginProcess();
    await sources.serve(ca, 'stream.test', { appId: 'app_9', originUrl: remoteOrigin.url });
    uploadFile = path.join(caDir, 'upload.bin');
    await pipeline(Readable.from(pattern(BODY)), createWriteStream(uploadFile));
  });

  afterAll(async () => {
    await remoteOrigin?.close();
  });

  function* pattern(bytes: number) {
    for (let sent = 0; sent < bytes; sent += patternChunk.length) yield patternChunk;
  }

  function patternSha256(bytes: number): string {
    const hash = createHash('sha256');
    for (const chunk of pattern(bytes)) hash.update(chunk);
    return hash.digest('hex');
  }

  /** curl's flag for the protocol of a transfer, and the `%{http_version}` it then reports. */
  type Protocol = ['--http1.1', '1.1'] | ['--http2', '2'];

  async function upload([flag, version]: Protocol): Promise<{ bytes: number; sha256: string }> {
    const { body, status } = await curl([
      flag,
      '--upload-file',
      uploadFile,
      '--write-out',
      '\n%{http_version}\n%{http_code}',
      httpsUrl('stream.test', '/upload'),
    ]);
    expect(status).toBe('200');
    const end = body.lastIndexOf('\n');
    expect(body.slice(end + 1)).toBe(version);
    return JSON.parse(body.slice(0, end));
  }

  async function download([flag, version]: Protocol, bytes: number): Promise<number> {
    const { body, status } = await curl([
      flag,
      '--output',
      '/dev/null',
      '--write-out',
      '%{http_version} %{size_download}\n%{http_code}',
      httpsUrl('stream.test', `/download?bytes=${bytes}`),
    ]);
    expect(status).toBe('200');
    const [agreed, size] = body.split(' ');
    expect(agreed).toBe(version);
    return Number(size);
  }

  it.each<Protocol>([
    ['--http1.1', '1.1'],
    ['--http2', '2'],
  ])('relays a 100 MB upload and a 100 MB download with flat memory (curl %s)', async (...protocol) => {
    // Warm up pools, TLS sessions, the JIT and the allocator, so the measurement sees the transfers.
    await download(protocol, 10 * MB);
    await upload(protocol);

    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 10);
    try {
      expect(await upload(protocol)).toEqual({ bytes: BODY, sha256: patternSha256(BODY) });
      expect(await download(protocol, BODY)).toBe(BODY);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    // A relay that held a body would grow by all of it; one that streams grows by what its buffers,
    // the origin's in this process and the garbage collector's timing take, whatever the size
    // (about 20 to 35 MB here, more on Node 24, whose young generation grows with the allocation
    // rate). Half the body tells the two apart with room for that noise.
    expect(peak - baseline).toBeLessThan(BODY / 2);
  });
});

describe('WebSocket', () => {
  function connect(target: string): WebSocket {
    return new WebSocket(`wss://app.test:${edge.httpsPort}${target}`, {
      ca: ca.certificatePem,
      lookup: loopback,
    });
  }

  it('relays an upgrade and echoes messages both ways', async () => {
    const socket = connect('/chat?room=1');
    const received: string[] = [];
    socket.on('message', (data) => received.push(String(data)));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send('hello');
    socket.send('world');
    await waitFor(() => received.length === 2);
    expect(received).toEqual(['hello', 'world']);
    const upgrade = origin.requests.filter((seen) => seen.url === '/chat?room=1').at(-1);
    expect(upgrade?.headers['x-forwarded-proto']).toBe('https');
    expect(upgrade?.headers.host).toBe(`127.0.0.1:${origin.port}`);
    socket.close();
    await new Promise((resolve) => socket.once('close', resolve));
  });

  it("relays an origin's refusal of the upgrade", async () => {
    const socket = connect('/ws-reject');
    const error = await new Promise<Error>((resolve, reject) => {
      socket.once('error', resolve);
      socket.once('open', () => reject(new Error('the upgrade was accepted')));
    });
    expect(error.message).toBe('Unexpected server response: 401');
  });
});

describe('client failures', () => {
  it('survives a client that resets its upgrade request while the route is being looked up', async () => {
    const release = sources.holdRoutes();
    try {
      const socket = net.connect(edge.httpPort, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(
        'GET /chat HTTP/1.1\r\nHost: uncached.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      );
      await waitFor(() => sources.lookups.includes('uncached.test'));
      // A TCP reset, not a polite close: the edge sees an error on the socket it is holding.
      socket.resetAndDestroy();
      await once(socket, 'close');
    } finally {
      release();
    }
    expect((await get(httpUrl('app.test', '/after-reset'))).status).toBe(308);
  });
});

describe('origin failures', () => {
  it('answers 502 with a neutral page when the origin refuses connections', async () => {
    const response = await get(httpsUrl('down.test', '/'));
    expect(response.status).toBe(502);
    expectNeutral(response.body);
  });

  it('answers 504 when the origin accepts but never answers', async () => {
    const response = await get(httpsUrl('app.test', '/hang'));
    expect(response.status).toBe(504);
    expectNeutral(response.body);
  });
});

describe('private origins refused', () => {
  let strictEdge: Edge;
  let strictClient: Agent;

  beforeAll(async () => {
    const strictSources = new MemorySources();
    await strictSources.serve(ca, 'literal.test', { appId: 'app_6', originUrl: origin.url });
    await strictSources.serve(ca, 'named.test', {
      appId: 'app_7',
      originUrl: `http://localhost:${origin.port}`,
    });
    strictEdge = await startEdge({
      host: '127.0.0.1',
      appsDomain: 'apps.test',
      httpPort: 0,
      httpsPort: 0,
      routes: strictSources,
      certificates: strictSources,
      challenges: strictSources,
      allowPrivateOrigins: false,
      logger,
    });
    strictClient = new Agent({ connect: { ca: ca.certificatePem, lookup: loopback } });
  });

  afterAll(async () => {
    await strictClient?.close();
    await strictEdge?.close();
  });

  it('refuses at connect time an origin on 127.0.0.1, by address or by a name resolving there', async () => {
    const connectionsBefore = origin.connections();
    for (const hostname of ['literal.test', 'named.test']) {
      const response = await request(`https://${hostname}:${strictEdge.httpsPort}/`, {
        dispatcher: strictClient,
      });
      expect(response.statusCode).toBe(502);
      expectNeutral(await response.body.text());
    }
    expect(origin.connections()).toBe(connectionsBefore);
  });
});

describe('invalidate', () => {
  it('stops serving a removed domain at once, on new handshakes and open connections alike', async () => {
    await sources.serve(ca, 'gone.test', { appId: 'app_8', originUrl: origin.url });
    expect((await get(httpsUrl('gone.test'))).status).toBe(200);

    sources.remove('gone.test');
    // Still cached: the removal alone is not seen yet (this is what invalidate is for).
    expect((await handshake('gone.test')).subjectaltname).toBe('DNS:gone.test');

    edge.invalidate('gone.test');
    // The client's pooled connection, made for gone.test before, now gets the neutral 404 ...
    const onOpenConnection = await get(httpsUrl('gone.test'));
    expect(onOpenConnection.status).toBe(404);
    expectNeutral(onOpenConnection.body);
    // ... and a new handshake gets no certificate.
    expect(await refusal('gone.test')).toMatchObject(NO_CERTIFICATE);
  });
});

describe('close', () => {
  it('lets a request in flight finish, then stops', async () => {
    const closingSources = new MemorySources();
    await closingSources.serve(ca, 'app.test', { appId: 'app_1', originUrl: origin.url });
    const closingEdge = await startEdge({
      host: '127.0.0.1',
      appsDomain: 'apps.test',
      httpPort: 0,
      httpsPort: 0,
      routes: closingSources,
      certificates: closingSources,
      challenges: closingSources,
      allowPrivateOrigins: true,
      logger,
    });
    const heldBefore = origin.requests.filter((seen) => seen.url === '/held').length;
    const inFlight = request(`https://app.test:${closingEdge.httpsPort}/held`, { dispatcher: client });
    await waitFor(() => origin.requests.filter((seen) => seen.url === '/held').length > heldBefore);

    let closed = false;
    const closing = closingEdge.close().then(() => {
      closed = true;
    });
    await expect(handshake('app.test', { port: closingEdge.httpsPort })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    expect(closed).toBe(false);

    origin.release();
    const response = await inFlight;
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('released');
    await closing;
    expect(closed).toBe(true);
  });
});
