import type { Ids, Keys } from './placeholders.js';
import { bytesOf } from './raw-http.js';

/** A hand-written piece of broken (or merely unusual) HTTP, and what it must get back. */
export interface RawCase {
  name: string;
  bytes: () => Buffer;
  /** The methods of the requests in `bytes`, in order (answers to HEAD carry no body). */
  methods?: string[];
  /** The one answer's status is one of these. */
  expect?: number[];
  /** Pipelined: exactly these answers, in order. */
  sequence?: number[];
}

/**
 * The cases, each sent on a connection of its own. `bytes()` reads `ids` and `keys` when the case
 * runs, so it names the fixtures as they are then.
 */
export function rawCases(ids: Ids, keys: Keys): RawCase[] {
  return [
    {
      name: 'invalid UTF-8 in the path',
      bytes: () =>
        bytesOf(
          `GET /v1/apps/${ids.appId}/domains/`,
          Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
          ` HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n\r\n`,
        ),
      expect: [400, 404],
    },
    {
      name: 'percent-encoded invalid UTF-8 in the path',
      bytes: () =>
        bytesOf(
          `GET /v1/apps/${ids.appId}/domains/%ff%fe%ED%A0%80 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n\r\n`,
        ),
      expect: [400, 404],
    },
    {
      name: 'percent-encoded invalid UTF-8 in the query',
      bytes: () =>
        bytesOf(
          `GET /v1/apps/${ids.appId}/domains?limit=%ff&offset=%ED%A0%80 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n\r\n`,
        ),
      expect: [400, 422],
    },
    {
      name: 'invalid UTF-8 in header values',
      bytes: () =>
        bytesOf(
          'GET /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ',
          Buffer.from([0xff, 0xfe]),
          '\r\nX-Request-Id: ',
          Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80]),
          '\r\n\r\n',
        ),
      expect: [400, 401],
    },
    {
      name: 'invalid UTF-8 in a valid key’s request id',
      bytes: () =>
        bytesOf(
          `GET /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\nX-Request-Id: `,
          Buffer.from([0xc3, 0x28, 0xff]),
          '\r\n\r\n',
        ),
      expect: [200, 400],
    },
    {
      name: 'invalid UTF-8 in a JSON body',
      bytes: () => {
        const body = Buffer.concat([
          Buffer.from('{"domain":"'),
          Buffer.from([0xff, 0xfe, 0xc3]),
          Buffer.from('.com"}'),
        ]);
        return bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
          body,
        );
      },
      methods: ['POST'],
      expect: [400, 422],
    },
    {
      name: 'a body shorter than its Content-Length',
      bytes: () =>
        bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"domain":"short',
        ),
      methods: ['POST'],
    },
    {
      name: 'a body longer than its Content-Length',
      bytes: () =>
        bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{"domain":"long-body.example-fuzz.com"}',
        ),
      methods: ['POST', 'GET'],
    },
    {
      name: 'an absurd Content-Length',
      bytes: () =>
        bytesOf(
          'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n',
          `Authorization: Bearer ${keys.write}\r\nContent-Length: 99999999999999999999999999\r\n\r\n{}`,
        ),
      methods: ['POST'],
      expect: [400, 413],
    },
    {
      name: 'a Content-Length just over the limit',
      bytes: () =>
        bytesOf(
          'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n',
          `Authorization: Bearer ${keys.write}\r\nContent-Length: ${64 * 1024 + 1}\r\n\r\n{}`,
        ),
      methods: ['POST'],
      expect: [413],
    },
    {
      name: 'a chunked body over the limit',
      bytes: () => {
        const chunk = 'x'.repeat(16 * 1024);
        const chunks = Array.from({ length: 5 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join(
          '',
        );
        return bytesOf(
          `POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${keys.write}\r\n`,
          `Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
        );
      },
      methods: ['POST'],
      expect: [413],
    },
    {
      name: 'two different Content-Lengths',
      bytes: () =>
        bytesOf(
          'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n',
          'Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
        ),
      methods: ['POST'],
      expect: [400],
    },
    {
      name: 'Content-Length with Transfer-Encoding (request smuggling)',
      bytes: () =>
        bytesOf(
          'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n',
          'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
        ),
      methods: ['POST'],
      expect: [400],
    },
    {
      name: 'chunked garbage',
      bytes: () =>
        bytesOf(
          `POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        ),
      methods: ['POST'],
      expect: [400],
    },
    {
      name: 'a huge chunk size',
      bytes: () =>
        bytesOf(
          `POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n{}\r\n0\r\n\r\n',
        ),
      methods: ['POST'],
      expect: [400, 413],
    },
    {
      name: 'a chunked body cut off',
      bytes: () =>
        bytesOf(
          `POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Transfer-Encoding: chunked\r\n\r\n10\r\n{"slug":',
        ),
      methods: ['POST'],
    },
    {
      name: 'a valid chunked JSON body',
      bytes: () => {
        const pieces = ['{"d', 'omain":"chunked.', 'example-fuzz.com', '"}'];
        const chunks = pieces.map((piece) => `${piece.length.toString(16)}\r\n${piece}\r\n`).join('');
        return bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${keys.write}\r\n`,
          `Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
        );
      },
      methods: ['POST'],
      expect: [200],
    },
    {
      name: 'a 100 KB URL',
      bytes: () => bytesOf(`GET /v1/apps/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      expect: [414, 431],
    },
    {
      name: 'a 20 KB header',
      bytes: () => bytesOf(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
      expect: [431],
    },
    {
      name: '3,000 headers',
      bytes: () =>
        bytesOf(
          `GET /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          Array.from({ length: 3000 }, (_, i) => `X-H${i}: ${i}\r\n`).join(''),
          '\r\n',
        ),
      expect: [200, 431],
    },
    {
      name: 'HTTP/1.0 without Host',
      bytes: () => bytesOf('GET /healthz HTTP/1.0\r\n\r\n'),
      expect: [200],
    },
    {
      name: 'HTTP/1.1 without Host',
      bytes: () => bytesOf('GET /healthz HTTP/1.1\r\n\r\n'),
      expect: [200, 400],
    },
    {
      name: 'a request line without a version',
      bytes: () => bytesOf('GET /healthz\r\n\r\n'),
      expect: [200, 400],
    },
    {
      name: 'an HTTP/2 preface',
      bytes: () => bytesOf('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      expect: [400, 505],
    },
    {
      name: 'an unknown method',
      bytes: () => bytesOf('FOO /v1/apps HTTP/1.1\r\nHost: x\r\n\r\n'),
      expect: [400, 404, 405],
    },
    {
      name: 'a lowercase method',
      bytes: () => bytesOf('get /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
      expect: [400],
    },
    {
      name: 'CONNECT',
      bytes: () => bytesOf('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n'),
    },
    {
      name: 'an Upgrade to WebSocket',
      bytes: () =>
        bytesOf(
          'GET /v1/apps HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n',
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        ),
    },
    {
      name: 'an absolute-form target',
      bytes: () => bytesOf('GET http://evil.example.com/healthz HTTP/1.1\r\nHost: evil.example.com\r\n\r\n'),
      expect: [200, 400, 404],
    },
    {
      name: 'an asterisk-form OPTIONS',
      bytes: () => bytesOf('OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'),
      methods: ['OPTIONS'],
      expect: [400, 404],
    },
    {
      name: 'a NUL in the request line',
      bytes: () => bytesOf('GET /heal\0thz HTTP/1.1\r\nHost: x\r\n\r\n'),
      expect: [400],
    },
    {
      name: 'a header without a colon',
      bytes: () => bytesOf('GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n'),
      expect: [400],
    },
    {
      name: 'a space before the colon',
      bytes: () => bytesOf('GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n'),
      expect: [400],
    },
    {
      name: 'bare LF line ends',
      bytes: () => bytesOf('GET /healthz HTTP/1.1\nHost: x\n\n'),
      expect: [200, 400],
    },
    {
      name: 'Expect: 100-continue with its body',
      bytes: () =>
        bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 36\r\n\r\n',
          '{"domain":"expect.example-fuzz.com"}',
        ),
      methods: ['POST'],
      expect: [200],
    },
    {
      name: 'a gzip Content-Encoding over plain bytes',
      bytes: () =>
        bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n\x1f\x8b\x08garbage',
        ),
      methods: ['POST'],
      expect: [400, 415, 422],
    },
    {
      name: 'a UTF-16 body',
      bytes: () => {
        const body = Buffer.from('{"domain":"utf16.example-fuzz.com"}', 'utf16le');
        return bytesOf(
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          `Content-Type: application/json; charset=utf-16\r\nContent-Length: ${body.length}\r\n\r\n`,
          body,
        );
      },
      methods: ['POST'],
      expect: [400, 415, 422],
    },
    {
      name: 'three pipelined requests',
      bytes: () =>
        bytesOf(
          'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
          `POST /v1/apps/${ids.appId}/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          'Content-Type: application/json\r\nContent-Length: 38\r\n\r\n{"domain":"pipeline.example-fuzz.com"}',
          // Node runs pipelined requests concurrently (answering in order), and a client must not
          // pipeline a read behind a write it depends on (RFC 9112, 9.3.2): the HEAD reads another name.
          `HEAD /v1/apps/${ids.appId}/domains/${ids.domain} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n\r\n`,
        ),
      methods: ['GET', 'POST', 'HEAD'],
      sequence: [200, 200, 200],
    },
    {
      name: 'a pipelined request after a broken one',
      bytes: () =>
        bytesOf(
          'POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[[',
          'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
          'GARBAGE\r\n\r\n',
        ),
      methods: ['POST', 'GET'],
    },
    {
      name: '100 pipelined requests',
      bytes: () => bytesOf('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(100)),
      methods: Array.from({ length: 100 }, () => 'GET'),
      sequence: Array.from({ length: 100 }, () => 200),
    },
    {
      name: 'a deep JSON body over the socket',
      bytes: () => {
        const body = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
        return bytesOf(
          `POST /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.write}\r\n`,
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
      },
      methods: ['POST'],
      expect: [422],
    },
    {
      name: 'pure binary junk',
      bytes: () => Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) % 256)),
      expect: [400],
    },
  ];
}
