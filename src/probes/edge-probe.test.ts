import { once } from 'node:events';
import type http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCertificate } from '../../test/helpers/certs.js';
import { freePort } from '../../test/helpers/pebble.js';
import { EDGE_PAGE_HEADER } from '../edge/responses.js';
import { type EdgeAddress, leafSha256, parseEdgeAddress, probeEdge } from './edge-probe.js';

/**
 * One probe against real servers on loopback: an HTTPS server standing in for an edge (it answers
 * by path of the probe's Host, as the edge's proxy and error pages would), a TCP server that never
 * speaks (a hung edge), and a port nothing listens on.
 */

const NAME = 'shop.probe.test';
let certificate: TestCertificate;
let other: TestCertificate;
let server: https.Server;
let silent: net.Server;
const held = new Set<net.Socket>();
/** What the stand-in edge answers next: a status, and whether as its own error page. */
let answer = { status: 200, edgePage: false };
let address: EdgeAddress;

const probe = (overrides: Partial<Parameters<typeof probeEdge>[0]> = {}) =>
  probeEdge({
    address,
    hostname: NAME,
    expectedSha256: leafSha256(certificate.certificatePem),
    timeoutMs: 2000,
    ...overrides,
  });

beforeAll(async () => {
  const ca = await createTestCa();
  certificate = await ca.issue([NAME]);
  other = await ca.issue([NAME]);
  server = https.createServer(
    { cert: certificate.certificatePem, key: certificate.privateKeyPem },
    (request: http.IncomingMessage, response: http.ServerResponse) => {
      response.writeHead(answer.status, answer.edgePage ? { [EDGE_PAGE_HEADER]: String(answer.status) } : {});
      response.end(JSON.stringify({ host: request.headers.host, agent: request.headers['user-agent'] }));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  address = parseEdgeAddress(`127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  silent = net.createServer((socket) => held.add(socket));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
});
afterAll(async () => {
  for (const socket of held) socket.destroy();
  server.closeAllConnections();
  await Promise.all([
    new Promise((resolve) => server.close(resolve)),
    new Promise((resolve) => silent.close(resolve)),
  ]);
});

describe('probeEdge', () => {
  it('passes on the current certificate and any answer of the origin', async () => {
    answer = { status: 200, edgePage: false };
    expect(await probe()).toEqual({
      address: address.label,
      ok: true,
      certificateSha256: leafSha256(certificate.certificatePem),
      status: 200,
      error: null,
      outcome: 'ok',
    });
    // The origin's own 500 is the App's business: the edge served it.
    answer = { status: 500, edgePage: false };
    expect(await probe()).toMatchObject({ ok: true, status: 500, outcome: 'ok' });
  });

  it("fails on another certificate than the current one, and on the edge's own error pages", async () => {
    answer = { status: 200, edgePage: false };
    const stale = await probe({ expectedSha256: leafSha256(other.certificatePem) });
    expect(stale).toMatchObject({
      ok: false,
      outcome: 'certificate_mismatch',
      certificateSha256: leafSha256(certificate.certificatePem),
      status: 200,
    });
    expect(stale.error).toContain(`is ${leafSha256(other.certificatePem).slice(0, 16)}…`);
    answer = { status: 502, edgePage: true };
    expect(await probe()).toMatchObject({
      ok: false,
      outcome: 'edge_error',
      status: 502,
      error: `${address.label} answered 502 from its own error page for ${NAME}: the origin could not be reached through it`,
    });
    answer = { status: 404, edgePage: true };
    expect(await probe()).toMatchObject({
      outcome: 'edge_error',
      error: expect.stringMatching(/does not route the name$/),
    });
  });

  it('fails within its time on an edge that never answers, and at once on one that is not there', async () => {
    const hung = parseEdgeAddress(`127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
    expect(await probe({ address: hung, timeoutMs: 200 })).toMatchObject({
      ok: false,
      outcome: 'timeout',
      certificateSha256: null,
      error: `${hung.label} did not answer for ${NAME} within 200 ms (in the TLS handshake)`,
    });
    const closed = parseEdgeAddress(`127.0.0.1:${await freePort()}`);
    const refused = await probe({ address: closed });
    expect(refused).toMatchObject({ ok: false, outcome: 'unreachable' });
    expect(refused.error).toMatch(/ECONNREFUSED/);
  });

  it('stops when its caller aborts', async () => {
    const hung = parseEdgeAddress(`127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
    const abort = new AbortController();
    const running = probe({ address: hung, signal: abort.signal, timeoutMs: 60_000 });
    abort.abort(new Error('worker stopping'));
    await expect(running).rejects.toThrow('worker stopping');
  });
});

describe('parseEdgeAddress', () => {
  it('reads host:port, [v6]:port and a host alone (port 443)', () => {
    expect(parseEdgeAddress(' 10.0.0.5:8443 ')).toEqual({
      host: '10.0.0.5',
      port: 8443,
      label: '10.0.0.5:8443',
    });
    expect(parseEdgeAddress('[2001:db8::5]:443')).toMatchObject({ host: '2001:db8::5', port: 443 });
    expect(parseEdgeAddress('edge-1.internal')).toMatchObject({ host: 'edge-1.internal', port: 443 });
  });
  it.each(['', '10.0.0.5:0', '10.0.0.5:70000', 'http://10.0.0.5', '2001:db8::5', 'edge 1:443'])(
    'refuses %j',
    (spec) => {
      expect(() => parseEdgeAddress(spec)).toThrow(/is not an edge address/);
    },
  );
});
