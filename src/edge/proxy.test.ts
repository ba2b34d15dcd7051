import { once } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import http2, { type IncomingHttpHeaders as Http2Headers, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startOrigin } from '../../test/helpers/origin.js';
import { waitUntil } from '../../test/helpers/wait.js';
import { createLogger } from '../logger.js';
import { Http2Exchange } from './http2-exchange.js';
import {
  clientResponseHeaders,
  h2ResponseHeaders,
  originRequestHeaders,
  parseOrigin,
  ReverseProxy,
} from './proxy.js';

/** The parts of a request `originRequestHeaders` reads: headers as Node parses them, the socket. */
function incoming(headers: Record<string, string>, remoteAddress: string, encrypted = true): IncomingMessage {
  const socket = encrypted ? { remoteAddress, encrypted: true } : { remoteAddress };
  return { headers, socket } as unknown as IncomingMessage;
}

const APP_TEST = { hostname: 'shop.acme.test', port: undefined };
const COOKIES = { hostname: 'shop.acme.test', appsDomain: 'apps.portico.test' };

/** A flat name, value list as an object of lists, to compare regardless of order. */
function grouped(flat: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    out[name] = [...(out[name] ?? []), flat[i + 1] as string];
  }
  return out;
}

describe('parseOrigin', () => {
  it('splits an origin_url into the pool key and a path prefix', () => {
    expect(parseOrigin('https://origin.test/')).toEqual({ origin: 'https://origin.test', pathPrefix: '' });
    expect(parseOrigin('http://origin.test:8080/base/')).toEqual({
      origin: 'http://origin.test:8080',
      pathPrefix: '/base',
    });
    expect(parseOrigin('http://[2001:db8::1]:81/a/b?ignored=1')).toEqual({
      origin: 'http://[2001:db8::1]:81',
      pathPrefix: '/a/b',
    });
  });

  it('refuses what cannot be proxied to', () => {
    for (const url of ['ftp://origin.test/', 'not a url', 'https://user:secret@origin.test/']) {
      expect(parseOrigin(url)).toBeUndefined();
    }
  });
});

describe('originRequestHeaders', () => {
  it('drops hop-by-hop headers, those Connection lists, and what the edge sets itself', () => {
    const headers = originRequestHeaders(
      incoming(
        {
          host: 'Shop.Acme.Test.',
          connection: 'keep-alive, X-Hop, close',
          'x-hop': '1',
          'keep-alive': 'timeout=5',
          'proxy-authorization': 'Basic eA==',
          'proxy-connection': 'keep-alive',
          te: 'trailers',
          trailer: 'x-checksum',
          'transfer-encoding': 'chunked',
          upgrade: 'h2c',
          expect: '100-continue',
          'x-forwarded-proto': 'http',
          'x-forwarded-host': 'spoofed.test',
          'x-forwarded-port': '8080',
          'x-forwarded-prefix': '/evil',
          'x-forwarded-server': 'spoofed.test',
          'x-real-ip': '198.51.100.66',
          'x-original-url': '/admin',
          'x-rewrite-url': '/admin',
          forwarded: 'for=198.51.100.66;host=spoofed.test;proto=http',
          cookie: 'a=1; b=2',
          accept: 'text/html',
        },
        '203.0.113.9',
      ),
      APP_TEST,
    );
    expect(grouped(headers)).toEqual({
      cookie: ['a=1; b=2'],
      accept: ['text/html'],
      'x-forwarded-for': ['203.0.113.9'],
      'x-forwarded-proto': ['https'],
      'x-forwarded-host': ['shop.acme.test'],
      'x-forwarded-port': ['443'],
      forwarded: ['for=203.0.113.9;host=shop.acme.test;proto=https'],
    });
  });

  it('appends to an X-Forwarded-For chain, brackets and quotes IPv6, keeps a port that is not the default', () => {
    const headers = grouped(
      originRequestHeaders(
        incoming(
          { host: 'shop.acme.test:8443', 'x-forwarded-for': '198.51.100.1', forwarded: 'for=198.51.100.1' },
          '2001:db8::7',
          false,
        ),
        { hostname: 'shop.acme.test', port: 8443 },
      ),
    );
    expect(headers['x-forwarded-for']).toEqual(['198.51.100.1, 2001:db8::7']);
    expect(headers['x-forwarded-proto']).toEqual(['http']);
    expect(headers['x-forwarded-host']).toEqual(['shop.acme.test:8443']);
    expect(headers['x-forwarded-port']).toEqual(['8443']);
    expect(headers.forwarded).toEqual(['for="[2001:db8::7]";host="shop.acme.test:8443";proto=http']);
  });

  it('never forwards HTTP/2 pseudo-headers (the origin gets its own Host)', () => {
    const headers = originRequestHeaders(
      incoming(
        {
          ':method': 'GET',
          ':path': '/a',
          ':scheme': 'https',
          ':authority': 'shop.acme.test',
          accept: '*/*',
        },
        '203.0.113.9',
      ),
      APP_TEST,
    );
    expect(Object.keys(grouped(headers))).toEqual([
      'accept',
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-forwarded-host',
      'x-forwarded-port',
      'forwarded',
    ]);
  });

  it("leaves out the scheme's default port from the host, and names the routed host when the client sent none", () => {
    const headers = grouped(
      originRequestHeaders(incoming({}, '::ffff:192.0.2.4'), { hostname: 'shop.acme.test', port: 443 }),
    );
    expect(headers['x-forwarded-for']).toEqual(['192.0.2.4']);
    expect(headers['x-forwarded-host']).toEqual(['shop.acme.test']);
    expect(headers['x-forwarded-port']).toEqual(['443']);
    expect(headers.forwarded).toEqual(['for=192.0.2.4;host=shop.acme.test;proto=https']);
  });
});

describe('clientResponseHeaders', () => {
  it('keeps repeated fields and drops hop-by-hop ones, including those Connection lists', () => {
    const headers = clientResponseHeaders(
      {
        'content-type': 'text/plain',
        'set-cookie': ['a=1', 'b=2'],
        connection: 'keep-alive, X-Internal',
        'x-internal': 'secret',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'proxy-authenticate': 'Basic',
      },
      COOKIES,
    );
    expect(grouped(headers)).toEqual({ 'content-type': ['text/plain'], 'set-cookie': ['a=1', 'b=2'] });
  });

  it('keeps cookies to the name the request was for, one or several', () => {
    expect(
      grouped(clientResponseHeaders({ 'set-cookie': ['a=1; Domain=apps.portico.test; Path=/'] }, COOKIES)),
    ).toEqual({ 'set-cookie': ['a=1; Path=/'] });
    expect(
      grouped(
        clientResponseHeaders({ 'set-cookie': ['a=1; Domain=acme.test', 'b=2; Domain=test'] }, COOKIES),
      ),
    ).toEqual({ 'set-cookie': ['a=1; Domain=acme.test', 'b=2'] });
  });
});

describe('h2ResponseHeaders', () => {
  it('drops what HTTP/2 forbids, keeps one value of a field Node sends once, scopes cookies', () => {
    expect(
      h2ResponseHeaders(
        // As undici parses a response that repeats fields: a list for each.
        {
          'content-type': ['text/plain', 'text/html'],
          'set-cookie': ['a=1; Domain=apps.portico.test', 'b=2'],
          vary: ['accept', 'origin'],
          connection: 'keep-alive, X-Internal',
          'x-internal': 'secret',
          'keep-alive': 'timeout=5',
          'proxy-connection': 'keep-alive',
          'transfer-encoding': 'chunked',
          upgrade: 'h2c',
          'http2-settings': 'AAMAAABkAAQAAP__',
          te: 'trailers',
          etag: '"1"',
        } as unknown as IncomingHttpHeaders,
        COOKIES,
      ),
    ).toEqual({
      'content-type': 'text/plain',
      'set-cookie': ['a=1', 'b=2'],
      vary: ['accept', 'origin'],
      etag: '"1"',
    });
  });
});

describe('ReverseProxy over HTTP/2', () => {
  it('sends nothing to the origin for a stream the client reset before the proxy took it up', async () => {
    const origin = await startOrigin();
    const target = parseOrigin(origin.url);
    if (target === undefined) throw new Error(`not an origin: ${origin.url}`);
    const lines: string[] = [];
    const proxy = new ReverseProxy({
      allowPrivateOrigins: true,
      appsDomain: 'apps.portico.test',
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 5_000,
      logger: createLogger('debug', 'json', { write: (line: string) => lines.push(line) }),
    });
    // As when the edge waits for a route: the stream is gone before `forward` is called.
    const server = http2.createServer();
    server.on('stream', (stream: ServerHttp2Stream, headers: Http2Headers, _flags: number, raw: string[]) => {
      stream.on('error', () => {});
      const exchange = new Http2Exchange(stream, headers, raw);
      stream.once('close', () => proxy.forward(exchange, exchange, target, '/reset-first', APP_TEST));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const stream = client.request({ ':path': '/reset-first' });
      stream.on('error', () => {});
      stream.once('ready', () => stream.close(http2.constants.NGHTTP2_CANCEL));
      await waitUntil(() => lines.length > 0 || origin.requests.length > 0);
      expect(origin.requests).toEqual([]);
      expect(lines.join('')).toContain('client left before the response');
    } finally {
      client.close();
      server.close();
      await proxy.destroy();
      await origin.close();
    }
  });
});
