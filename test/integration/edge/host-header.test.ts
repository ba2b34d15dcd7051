/**
 * The Host header and what the edge forwards (issue 18, item 7), through the edge as `serve` runs
 * it. Requests are written byte for byte on raw sockets (TLS for HTTPS, TCP for HTTP): HTTP clients
 * normalize or refuse the very headers under test. Each case asserts the status a client gets and
 * what the origin received, if anything.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedRequest } from '../../helpers/origin.js';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { backends } from '../../helpers/stores.js';

interface RawAnswer {
  status: number;
  /** Header lines as sent, `name: value`. */
  head: string;
  headers: Record<string, string>;
  body: string;
}

/** Writes `request` and reads until the edge closes (each request says `Connection: close`). */
function exchange(socket: Duplex, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end === -1 ? text : text.slice(0, end);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), head, headers, body: text.slice(end + 4) });
    });
    socket.write(request, 'latin1');
  });
}

/** A request head from its lines; `Connection: close` is added so the answer ends with the socket. */
const requestOf = (lines: string[]) => `${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n`;

describe.each(backends)('the Host header at the edge on the $name store', (backend) => {
  let served: ServedEdge;
  const name = `shop.hosts-${backend.name}.com`;
  let counter = 0;
  /** A path no other request used, to find this one among what the origin received. */
  const uniquePath = () => `/case-${++counter}`;

  beforeAll(async () => {
    served = await openServedEdge(backend);
    await served.activate(name);
  });
  afterAll(async () => {
    await served?.close();
  });

  function https(lines: string[], servername = name): Promise<RawAnswer> {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: served.edge.httpsPort,
      servername,
      ca: served.root,
    });
    return new Promise((resolve, reject) => {
      socket.once('secureConnect', () => exchange(socket, requestOf(lines)).then(resolve, reject));
      socket.once('error', reject);
    });
  }

  function http(lines: string[]): Promise<RawAnswer> {
    const socket = net.connect(served.edge.httpPort, '127.0.0.1');
    return exchange(socket, requestOf(lines));
  }

  const received = (path: string): ReceivedRequest[] =>
    served.origin.requests.filter((request) => request.url === path);

  /** A refusal: 400, a page that names nobody (neither the served name nor anything the client sent). */
  function expectRefused(answer: RawAnswer): void {
    expect(answer.status).toBe(400);
    expect(answer.headers.location).toBeUndefined();
    expect(answer.head + answer.body).not.toMatch(/hosts-|evil|attacker/i);
  }

  const BAD_HOSTS = [
    `${name}:@evil.com`,
    `${name}:443@evil.com`,
    `${name}:`,
    `${name}:0`,
    `${name}:65536`,
    `${name}:https`,
    `${name}:443:443`,
    `${name}/evil.com`,
    `evil.com@${name}`,
    `${name}\\@evil.com`,
    `${name}..`,
    `shop_${name}`,
    '[::1',
  ];

  it('refuses over HTTPS a Host whose port is not a port or whose name is not a hostname; the origin sees nothing', async () => {
    for (const host of BAD_HOSTS) {
      const path = uniquePath();
      const answer = await https([`GET ${path} HTTP/1.1`, `Host: ${host}`]);
      expect({ host, status: answer.status }).toEqual({ host, status: 400 });
      expectRefused(answer);
      expect(received(path)).toEqual([]);
    }
  });

  it('refuses a WebSocket upgrade with a bad Host', async () => {
    const path = uniquePath();
    const answer = await https([
      `GET ${path} HTTP/1.1`,
      `Host: ${name}:@evil.com`,
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ]);
    expectRefused(answer);
    expect(received(path)).toEqual([]);
  });

  it('refuses a request with two Host headers, equal or not', async () => {
    for (const second of [name, 'evil.com']) {
      const path = uniquePath();
      const answer = await https([`GET ${path} HTTP/1.1`, `Host: ${name}`, `Host: ${second}`]);
      expectRefused(answer);
      expect(received(path)).toEqual([]);
    }
  });

  it('refuses an absolute-form target, whether its authority agrees with the Host or not', async () => {
    for (const authority of [name, 'evil.com', `${name}:${served.edge.httpsPort}`]) {
      const path = uniquePath();
      const answer = await https([`GET https://${authority}${path} HTTP/1.1`, `Host: ${name}`]);
      expectRefused(answer);
      expect(received(path)).toEqual([]);
    }
  });

  it('forwards the normalized host: lowercase, no trailing dot, the port only when it is not 443', async () => {
    const port = served.edge.httpsPort;
    const cases: [string, string, string][] = [
      [`${name.toUpperCase()}.`, name, '443'],
      [`${name}:443`, name, '443'],
      [`Shop.Hosts-${backend.name}.COM.:${port}`, `${name}:${port}`, String(port)],
    ];
    for (const [host, forwardedHost, forwardedPort] of cases) {
      const path = uniquePath();
      const answer = await https([`GET ${path} HTTP/1.1`, `Host: ${host}`]);
      expect(answer.status).toBe(200);
      const [seen] = received(path);
      expect(seen?.headers['x-forwarded-host']).toBe(forwardedHost);
      expect(seen?.headers['x-forwarded-port']).toBe(forwardedPort);
      expect(seen?.headers['x-forwarded-proto']).toBe('https');
      const quotedHost = forwardedHost.includes(':') ? `"${forwardedHost}"` : forwardedHost;
      expect(seen?.headers.forwarded).toBe(`for=127.0.0.1;host=${quotedHost};proto=https`);
    }
  });

  it('routes an HTTP/1.0 request without a Host by its SNI name, and forwards that name', async () => {
    const path = uniquePath();
    const answer = await https([`GET ${path} HTTP/1.0`]);
    expect(answer.status).toBe(200);
    expect(received(path)[0]?.headers['x-forwarded-host']).toBe(name);
  });

  it('still answers 421 for a valid Host that is not the SNI name', async () => {
    const path = uniquePath();
    const answer = await https([`GET ${path} HTTP/1.1`, `Host: other.hosts-${backend.name}.com`]);
    expect(answer.status).toBe(421);
    expect(received(path)).toEqual([]);
  });

  it('drops what a client claims about its address and the URL, replaces what the edge knows, appends to X-Forwarded-For', async () => {
    const path = uniquePath();
    const answer = await https([
      `GET ${path} HTTP/1.1`,
      `Host: ${name}`,
      'X-Real-IP: 198.51.100.66',
      'X-Original-URL: /admin',
      'X-Rewrite-URL: /admin',
      'X-Forwarded-For: 198.51.100.66',
      'X-Forwarded-Host: attacker.example',
      'X-Forwarded-Port: 8080',
      'X-Forwarded-Proto: http',
      'X-Forwarded-Prefix: /attacker',
      'X-Forwarded-Server: attacker.example',
      'Forwarded: for=198.51.100.66;host=attacker.example;proto=http',
      'X-End-To-End: kept',
    ]);
    expect(answer.status).toBe(200);
    const headers = received(path)[0]?.headers ?? {};
    for (const dropped of [
      'x-real-ip',
      'x-original-url',
      'x-rewrite-url',
      'x-forwarded-prefix',
      'x-forwarded-server',
    ]) {
      expect(headers[dropped], dropped).toBeUndefined();
    }
    expect(headers['x-forwarded-for']).toBe('198.51.100.66, 127.0.0.1');
    expect(headers['x-forwarded-host']).toBe(name);
    expect(headers['x-forwarded-port']).toBe('443');
    expect(headers['x-forwarded-proto']).toBe('https');
    expect(headers.forwarded).toBe(`for=127.0.0.1;host=${name};proto=https`);
    expect(headers['x-end-to-end']).toBe('kept');
  });

  describe('on the HTTP listener (redirects and ACME challenges)', () => {
    it('refuses a bad Host with 400 and no Location, on any path, the challenge path included', async () => {
      for (const host of BAD_HOSTS) {
        for (const path of ['/login', '/.well-known/acme-challenge/token']) {
          const answer = await http([`GET ${path} HTTP/1.1`, `Host: ${host}`]);
          expect({ host, path, status: answer.status }).toEqual({ host, path, status: 400 });
          expectRefused(answer);
        }
      }
      expectRefused(await http(['GET / HTTP/1.1', `Host: ${name}`, 'Host: evil.com']));
    });

    it('redirects to the normalized name, never to what the client wrote', async () => {
      const answer = await http(['GET /a?b=1 HTTP/1.1', `Host: ${name.toUpperCase()}.:80`]);
      expect(answer.status).toBe(308);
      expect(answer.headers.location).toBe(`https://${name}:${served.edge.httpsPort}/a?b=1`);
    });
  });
});
