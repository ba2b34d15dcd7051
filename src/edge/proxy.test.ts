import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, originRequestHeaders, parseOrigin } from './proxy.js';

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
