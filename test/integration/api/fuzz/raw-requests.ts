import fc from 'fast-check';
import { bytesOf } from './raw-http.js';

/** Mostly well-formed HTTP with a broken part or two, so that many requests reach the routes. */
export function rawRequestArbitrary() {
  const method = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PUT') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PRI', 'get', 'FOO', 'M-SEARCH', 'GE T', ''),
    },
  );
  /** A request target: text (with placeholders), then raw bytes (often none). */
  const target: fc.Arbitrary<[string, Uint8Array]> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(
        fc.constantFrom(
          '/v1/apps/{app}/domains',
          '/v1/apps/{app}/domains/{domain}',
          '/v1/apps/{app}/domains/{domain}/verify',
          '/v1/apps',
          '/healthz',
          '/v1/edge/ask?domain=x.com',
          '*',
          'http://evil.example.com/v1/apps',
        ),
        fc.constant(new Uint8Array(0)),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.constantFrom('/v1/apps/', '/v1/apps/{app}/domains/', '/'),
        fc.uint8Array({ maxLength: 12 }),
      ),
    },
  );
  const header = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom(
        'Authorization: Bearer {key}',
        'Authorization: Bearer {key}',
        'Authorization: Bearer {read-key}',
        'Content-Type: application/json',
        'Content-Type: application/json',
        'Content-Type: text/plain',
        'Host: 127.0.0.1',
        'Accept: */*',
        'Expect: 100-continue',
        'Connection: close',
        'Connection: keep-alive, Upgrade',
        'Upgrade: websocket',
        'X-Request-Id: \u00ff\u00fe',
        'X-Forwarded-For: 1.2.3.4, «9×300»',
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'Transfer-Encoding: chunked',
        'Transfer-Encoding: gzip, chunked',
        'Transfer-Encoding: chunked, identity',
        'Content-Length: 0',
        'Content-Length: -1',
        'Content-Length: 99999999999999999999999',
        'Content-Length: 1e3',
        'Content-Length: 5, 6',
        'Host : spaced',
        'NoColonHere',
        ': empty-name',
        ' Folded: continuation',
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'Authorization',
            'X-Request-Id',
            'Content-Type',
            'X-Forwarded-For',
            'Host',
            'X-Junk',
          ),
          fc.uint8Array({ maxLength: 16 }),
        )
        .map(([name, bytes]) => Buffer.concat([Buffer.from(`${name}: `), Buffer.from(bytes)])),
    },
  );
  const body = fc.oneof(
    fc.constant(Buffer.alloc(0)),
    fc.constant(Buffer.from('{"domain":"raw.example-fuzz.com"}')),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    fc.constant(Buffer.from('5\r\n{"dom\r\nzz\r\n\r\n')),
    fc.constant(Buffer.from('ffffffffffffffffff\r\nx\r\n0\r\n\r\n')),
  );
  return fc.record({
    method,
    target,
    query: fc.constantFrom('', '?limit=1', '?limit=%ff', '?«q×100»'),
    version: fc.constantFrom(
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.0',
      'HTTP/1.2',
      'HTTP/2.0',
      'HTTP/0.9',
      'http/1.1',
      '',
    ),
    headers: fc.array(header, { maxLength: 5 }),
    body,
    /** How the body is framed: a true Content-Length, one that lies either way, none, or chunked. */
    framing: fc.constantFrom(
      'exact',
      'exact',
      'exact',
      'exact',
      'chunked',
      'chunked',
      'short',
      'long',
      'none',
    ),
    eol: fc.oneof({ weight: 8, arbitrary: fc.constant('\r\n') }, fc.constantFrom('\n', '\r')),
  });
}

export type RawRequest = ReturnType<typeof rawRequestArbitrary> extends fc.Arbitrary<infer T> ? T : never;

/** The bytes of `r`, its placeholders resolved by `fill`, framed as `r.framing` says. */
export function rawRequestBytes(r: RawRequest, fill: (text: string) => string): Buffer {
  const [target, targetBytes] = r.target;
  const lines: Buffer[] = [
    bytesOf(r.method, ' ', fill(target), Buffer.from(targetBytes), fill(r.query), ' ', r.version),
  ];
  for (const h of r.headers) lines.push(typeof h === 'string' ? Buffer.from(fill(h), 'latin1') : h);
  if (r.framing === 'exact') lines.push(Buffer.from(`Content-Length: ${r.body.length}`));
  if (r.framing === 'short') lines.push(Buffer.from(`Content-Length: ${r.body.length + 10}`));
  if (r.framing === 'long') lines.push(Buffer.from(`Content-Length: ${Math.max(0, r.body.length - 3)}`));
  if (r.framing === 'chunked') lines.push(Buffer.from('Transfer-Encoding: chunked'));
  const payload =
    r.framing === 'chunked' && r.body.length > 0
      ? bytesOf(`${r.body.length.toString(16)}\r\n`, r.body, '\r\n0\r\n\r\n')
      : r.body;
  return Buffer.concat([...lines.flatMap((line) => [line, Buffer.from(r.eol)]), Buffer.from(r.eol), payload]);
}
