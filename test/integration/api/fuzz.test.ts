import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApi } from '../../../src/app.js';
import { loadConfig } from '../../../src/config.js';
import { systemClock } from '../../../src/domain/clock.js';
import { Metrics } from '../../../src/ops/metrics.js';
import { createServices } from '../../../src/services.js';
import type { Store } from '../../../src/store/store.js';
import { createTestApp, type TestApi, wrapApi } from '../../helpers/api.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';

/**
 * Issue 7: hostile input to the whole API (random methods, paths, headers and bodies, invalid
 * UTF-8, huge numbers, deep JSON, broken HTTP on a real socket) finds no 500 and no crash. Every
 * answer is < 500, JSON where it says JSON, an error in one of the two documented shapes, and
 * reveals no stack, SQL or path; the server is healthy afterwards.
 *
 * Inputs are written with `«unit×count»` for long repetitions (expanded just before sending), so
 * a counterexample fast-check prints stays readable.
 */
const expand = (text: string) =>
  text.replace(/«([^×»]*)×(\d+)»/g, (_, unit: string, count: string) => unit.repeat(Number(count)));

// ---------------------------------------------------------------------------------------------
// What every answer must satisfy
// ---------------------------------------------------------------------------------------------

interface Seen {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  method: string;
}

const LEAKS: [string, RegExp][] = [
  ['a stack trace', /\n\s*at [^\n]*[/\\][^\n]*:\d+/],
  ['a stack trace', /\bat (async )?[\w.<>]+ \((file:\/\/|\/)/],
  ['SQL', /\bSELECT\s|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bDELETE FROM\b/i],
  ['a file path', /\/work\/|node_modules|\/src\/[\w/-]+\.ts/],
  ['a database error', /SQLITE_|\bsqlite3?\b|\bpg_\w|relation "|violates (unique|foreign)/i],
];

const headerText = (value: Seen['headers'][string]) =>
  Array.isArray(value) ? value.join(', ') : value === undefined ? '' : String(value);

/**
 * Fastify's own error bodies (`{error, message, statusCode}`), sent before Portico's error handler
 * sees the request: malformed HTTP (the default `clientErrorHandler`), a bad percent-encoding in
 * the path or a path parameter over 100 characters (no `frameworkErrors`). Neither documented
 * shape; pinned by the "known bugs" tests below. The properties count them instead of stopping at
 * the first, so that they keep looking for everything else.
 */
function fastifyNative(body: unknown): string | undefined {
  const b = body as { error?: unknown; message?: unknown; statusCode?: unknown; code?: unknown } | null;
  if (
    typeof b === 'object' &&
    b !== null &&
    typeof b.error === 'string' &&
    typeof b.message === 'string' &&
    typeof b.statusCode === 'number' &&
    !('success' in b)
  )
    return `${b.statusCode} ${typeof b.code === 'string' ? b.code : b.message}`;
  return undefined;
}

interface Verdict {
  problems: string[];
  /** A Fastify-native error body (see `fastifyNative`). */
  deviation?: string;
}

/** Everything wrong with one answer (no problems when it is acceptable). */
function judge(seen: Seen): Verdict {
  const problems: string[] = [];
  let deviation: string | undefined;
  if (!(seen.status >= 100 && seen.status < 500)) problems.push(`status ${seen.status}`);
  const type = headerText(seen.headers['content-type']).toLowerCase();
  const hasBody = seen.method !== 'HEAD' && seen.body.length > 0;
  let json: unknown;
  if (hasBody && type.includes('json')) {
    try {
      json = JSON.parse(seen.body);
    } catch {
      problems.push(`a ${type} body that does not parse`);
    }
  }
  if (seen.status >= 400 && hasBody) {
    if (!type.includes('json')) problems.push(`an error body of type "${type}"`);
    else if (
      json !== undefined &&
      !isErrorResponse(json, seen.status) &&
      !isValidationError(json, seen.status)
    ) {
      // Fastify's own error bodies were tolerated while they were known bugs; fixed, they are problems.
      const native = fastifyNative(json);
      problems.push(
        native
          ? `a Fastify-native error body (${native})`
          : 'an error body in neither ErrorResponse nor HTTPValidationError shape',
      );
    }
  }
  if (seen.status >= 400 || type.includes('json')) {
    for (const [what, pattern] of LEAKS) if (pattern.test(seen.body)) problems.push(`a body with ${what}`);
  }
  return { problems, deviation };
}

function isErrorResponse(body: unknown, status: number): boolean {
  const b = body as { success?: unknown; status?: unknown; error?: { message?: unknown; type?: unknown } };
  return (
    typeof b === 'object' &&
    b !== null &&
    b.success === false &&
    b.status === status &&
    typeof b.error === 'object' &&
    b.error !== null &&
    typeof b.error.message === 'string' &&
    typeof b.error.type === 'string'
  );
}

function isValidationError(body: unknown, status: number): boolean {
  const detail = (body as { detail?: unknown } | null)?.detail;
  return (
    status === 422 &&
    Array.isArray(detail) &&
    detail.length > 0 &&
    detail.every(
      (d: { loc?: unknown; msg?: unknown; type?: unknown }) =>
        Array.isArray(d.loc) && typeof d.msg === 'string' && typeof d.type === 'string',
    )
  );
}

const describeSeen = (seen: Seen) =>
  `${seen.method} → ${seen.status} ${headerText(seen.headers['content-type'])} ${seen.body.slice(0, 300)}`;

// ---------------------------------------------------------------------------------------------
// Raw HTTP over a socket
// ---------------------------------------------------------------------------------------------

/**
 * What the server does with each connection, seen from inside (the API runs in this process): how
 * many bytes it read and which requests it has not answered yet. A raw exchange ends its side of
 * the connection only once the server waits for the client, so no answer is cut off by an early
 * end, and a request the server cannot finish (a body shorter than its Content-Length) ends too.
 */
class ServerWatch {
  private readonly connections = new Map<number, { socket: net.Socket; open: Set<http.IncomingMessage> }>();

  constructor(server: http.Server) {
    server.on('connection', (socket: net.Socket) => {
      const port = socket.remotePort as number;
      const entry = { socket, open: new Set<http.IncomingMessage>() };
      this.connections.set(port, entry);
      socket.once('close', () => {
        if (this.connections.get(port) === entry) this.connections.delete(port);
      });
    });
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      const entry = this.connections.get(request.socket.remotePort as number);
      if (!entry) return;
      entry.open.add(request);
      response.once('close', () => entry.open.delete(request));
    });
  }

  /**
   * Whether the server read all `written` bytes of the client at `port` and has nothing to do but
   * wait for more (every request it holds is still missing part of its body); undefined when it
   * has no such connection (not accepted yet, or closed).
   */
  waitsForClient(port: number, written: number): boolean | undefined {
    const entry = this.connections.get(port);
    if (!entry) return undefined;
    return entry.socket.bytesRead >= written && [...entry.open].every((request) => !request.complete);
  }
}

interface RawResult {
  responses: Seen[];
  /** Bytes after the last complete response (a truncated answer). */
  trailing: string;
  error?: string;
}

/**
 * Sends `bytes` on a new connection, waits until the server answered everything it can (or
 * closed), closes the sending side and reads to the end. `methods` are the requests' methods in
 * order (answers to HEAD carry no body). Bounded: a server that neither answers nor waits fails.
 */
async function exchange(
  watch: ServerWatch,
  port: number,
  bytes: Buffer,
  methods: string[],
): Promise<RawResult> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const localPort = socket.localPort as number;
  const chunks: Buffer[] = [];
  let error: string | undefined;
  let closed = false;
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('error', (e: NodeJS.ErrnoException) => {
    // Node answers a malformed request and resets the connection; the answer is what matters.
    if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') error = `${e.code ?? ''} ${e.message}`;
  });
  const closing = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  socket.write(bytes);
  const deadline = Date.now() + 15_000;
  while (!closed && watch.waitsForClient(localPort, bytes.length) !== true) {
    if (Date.now() > deadline) {
      error = 'the server held a complete request unanswered for 15 s';
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  if (!closed) socket.end();
  const bound = setTimeout(() => {
    error ??= 'the server did not close within 15 s of the end of the request';
    socket.destroy();
  }, 15_000);
  await closing;
  clearTimeout(bound);
  return { ...parseResponses(Buffer.concat(chunks), [...methods]), error };
}

function parseResponses(data: Buffer, methods: string[]): Omit<RawResult, 'error'> {
  const responses: Seen[] = [];
  let rest = data;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? -1);
    if (status < 0) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let after = rest.subarray(end + 4);
    if (status < 200) {
      rest = after;
      continue;
    }
    const method = methods.shift() ?? 'GET';
    let body: Buffer = Buffer.alloc(0);
    if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = after.indexOf('\r\n');
        if (lineEnd < 0) return { responses, trailing: rest.toString('latin1') };
        const size = Number.parseInt(after.subarray(0, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size) || after.length < lineEnd + 2 + size + 2)
          return { responses, trailing: rest.toString('latin1') };
        parts.push(after.subarray(lineEnd + 2, lineEnd + 2 + size));
        after = after.subarray(lineEnd + 2 + size + 2);
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (after.length < length) return { responses, trailing: rest.toString('latin1') };
      body = after.subarray(0, length);
      after = after.subarray(length);
    } else {
      body = after;
      after = Buffer.alloc(0);
    }
    responses.push({ status, headers, body: body.toString('utf8'), method });
    rest = after;
  }
  return { responses, trailing: rest.toString('latin1') };
}

/** Concatenates text (as latin1: one byte per character, so any byte can be written) and bytes. */
const bytesOf = (...parts: (string | Buffer)[]) =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : part)));

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** encodeURIComponent, which refuses lone surrogates: those become an encoded surrogate (invalid UTF-8). */
const encode = (text: string) => {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80';
  }
};

const hostileSegments = [
  '',
  '.',
  '..',
  '%2e%2e',
  '%2F',
  '%2f..%2f..%2fetc%2fpasswd',
  '%00',
  '%zz',
  '%',
  '%ff%fe',
  '%ED%A0%80',
  '%C0%AE',
  '%F0%9F%98%80',
  '%E2%80%AE',
  'ü',
  '%C3%BC',
  '😀',
  ';',
  '*',
  '~',
  '%20',
  '+',
  '1e309',
  '-0',
  '18446744073709551616',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'app_',
  'app_abc123def456',
  'app_ABC123DEF456',
  'xn--',
  'xn--zz.com',
  'localhost',
  '127.0.0.1',
  '[::1]',
  'Known.Example-Fuzz.COM.',
  'known.example-fuzz.com%2e',
  '«a×64».example-fuzz.com',
  '«a×300»',
  '«a.×2000»com',
];

const hostname = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?\.(com|net|co\.uk|de|example-fuzz\.com|test)$/),
  fc.constantFrom(...hostileSegments),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

const queryValue = fc.oneof(
  fc.constantFrom(
    '-1',
    '0',
    '1',
    '1000',
    '1001',
    '1e309',
    '1e3',
    '9007199254740993',
    '18446744073709551616',
    '-0',
    'NaN',
    'Infinity',
    'abc',
    '',
    '1.5',
    '0x10',
    '%201',
    '%00',
    '%ff',
    'true',
    '[]',
    '{}',
    '«9×400»',
  ),
  fc.string({ maxLength: 20 }).map(encode),
  hostname.map(encode),
);
const queryKey = fc.constantFrom(
  'limit',
  'offset',
  'domain',
  'limit[]',
  'limit[0]',
  '__proto__',
  '__proto__[limit]',
  'constructor[prototype][x]',
  'x',
  '',
  '%ff',
);
const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(queryKey, queryValue), { maxLength: 4 })
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('?', '??', '?&&&', '?=', '?limit', '#fragment') },
);

interface Ids {
  appId: string;
  otherAppId: string;
  domain: string;
  webhookId: string;
}

function requestArbitrary() {
  const segment = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('{app}', '{domain}', '{webhook}') },
    { weight: 1, arbitrary: fc.constant('{other-app}') },
    { weight: 3, arbitrary: fc.constantFrom(...hostileSegments) },
    { weight: 2, arbitrary: fc.string({ maxLength: 20 }).map(encode) },
    { weight: 2, arbitrary: hostname.map(encode) },
  );
  const app = fc.oneof({ weight: 3, arbitrary: fc.constant('{app}') }, segment);
  const domain = fc.oneof({ weight: 2, arbitrary: fc.constant('{domain}') }, segment);
  const path = fc.oneof(
    { weight: 3, arbitrary: fc.constant('/v1/apps') },
    { weight: 2, arbitrary: app.map((a) => `/v1/apps/${a}`) },
    { weight: 4, arbitrary: app.map((a) => `/v1/apps/${a}/domains`) },
    { weight: 4, arbitrary: fc.tuple(app, domain).map(([a, d]) => `/v1/apps/${a}/domains/${d}`) },
    { weight: 2, arbitrary: fc.tuple(app, domain).map(([a, d]) => `/v1/apps/${a}/domains/${d}/verify`) },
    { weight: 2, arbitrary: fc.constant('/v1/webhooks') },
    { weight: 1, arbitrary: segment.map((w) => `/v1/webhooks/${w}`) },
    { weight: 1, arbitrary: segment.map((w) => `/v1/webhooks/${w}/deliveries`) },
    { weight: 2, arbitrary: hostname.map((h) => `/v1/edge/ask?domain=${encode(h)}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '/openapi.json',
        '/healthz',
        '/readyz',
        '/metrics',
        '/tls/root.pem',
        '/',
        '/docs',
        '/docs/json',
        '/ui/app.js',
        '/ui/../../package.json',
        '/ui/%2e%2e/%2e%2e/package.json',
        '/v1',
        '/v1/',
        '/v2/apps',
        '//v1/apps',
        '/v1/apps/',
        '/v1//apps',
        '/V1/APPS',
        '/v1/apps/./',
        '/v1/edge/ask',
        '*',
      ),
    },
    { weight: 1, arbitrary: fc.array(segment, { minLength: 1, maxLength: 8 }).map((s) => `/${s.join('/')}`) },
  );
  const method = fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('TRACE', 'PROPFIND', 'PURGE', 'SEARCH', 'LOCK', 'COPY', 'MKCOL'),
    },
  );
  const authorization = fc.oneof(
    { weight: 8, arbitrary: fc.constant('Bearer {key}') },
    { weight: 1, arbitrary: fc.constant('Bearer {read-key}') },
    { weight: 1, arbitrary: fc.constant('Bearer {other-key}') },
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'Bearer',
        'Bearer ',
        'Basic dXNlcjpwYXNz',
        'Bearer {key}x',
        'bearer {key}',
        'BEARER\t{key}\t',
        'Bearer {key} {key}',
        'Bearer pk_«a×40»',
        'Bearer «x×8000»',
        'Bearer %ff%fe',
        'Bearer __proto__',
        'Bearer constructor',
        '',
        ' ',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => `Bearer ${s}`) },
  );
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'APPLICATION/JSON',
        'application/json;;;',
        'application/json, text/plain',
        'application/vnd.api+json',
        'application/merge-patch+json',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=xyz',
        'text/plain',
        'text/html',
        'application/octet-stream',
        '*/*',
        '',
        ';',
        'json',
        'application/',
      ),
    },
  );
  const extraHeaders = fc.dictionary(
    fc.constantFrom(
      'x-request-id',
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-forwarded-host',
      'accept',
      'accept-encoding',
      'accept-language',
      'content-encoding',
      'if-none-match',
      'if-modified-since',
      'origin',
      'cookie',
      'range',
      'x-http-method-override',
      'forwarded',
    ),
    fc.oneof(
      fc.constantFrom(
        '',
        '*',
        'gzip',
        'br, gzip;q=0',
        'text/html',
        'application/json',
        'not-an-ip',
        '999.999.999.999, ::::',
        '«1.2.3.4, ×500»5.6.7.8',
        'https',
        'javascript:alert(1)',
        'DELETE',
        'bytes=0-0',
        'bytes=-1',
        '__proto__',
        '«x×4000»',
        'for=_hidden;proto=gopher',
      ),
      // Header values as a client library sends them: printable ASCII (raw bytes go over the socket).
      fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, '?')),
    ),
    { maxKeys: 3 },
  );

  const weirdString = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    hostname,
    fc.constantFrom('\ud800', '\udfff.example.com', 'a\u0000b', '\u202e', '😀', 'ü.de', '«x×70000»'),
  );
  const weirdValue = fc.oneof(
    weirdString,
    fc.constantFrom(null, true, false, 0, -0, 1e308, -1, 2 ** 64, Number.MAX_SAFE_INTEGER + 2, [], {}, ['x']),
    fc.jsonValue({ maxDepth: 3 }),
  );
  const shaped = fc.oneof(
    fc.record(
      {
        slug: fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,20}[a-z0-9]$/), weirdValue),
        meta: fc.oneof(
          fc.record({ title: weirdValue, description: weirdValue }, { requiredKeys: [] }),
          weirdValue,
        ),
        origin_url: fc.oneof(
          fc.constantFrom(
            'https://origin.example.com',
            'http://127.0.0.1:22',
            'http://[::1]/',
            'http://169.254.169.254/latest/meta-data',
            'https://user:pass@example.com',
            'file:///etc/passwd',
            'javascript:alert(1)',
            'https://example.com/#x',
            'http://0x7f000001/',
          ),
          weirdValue,
        ),
      },
      { requiredKeys: [] },
    ),
    fc.record(
      { domain: fc.oneof(hostname, weirdValue), is_primary: fc.oneof(fc.boolean(), weirdValue) },
      { requiredKeys: [] },
    ),
    fc.record(
      {
        url: fc.oneof(
          fc.constantFrom('https://hooks.example.com/x', 'http://127.0.0.1/hook', 'ftp://example.com/'),
          weirdValue,
        ),
        events: fc.oneof(
          fc.array(fc.constantFrom('domain.verified', 'domain.active', 'nope', '*', '')),
          weirdValue,
        ),
        secret: weirdValue,
      },
      { requiredKeys: [] },
    ),
  );
  const literalBodies = [
    '«[×10000»«]×10000»',
    '«{"a":×10000»1«}×10000»',
    '{"domain":«[×10000»«]×10000»}',
    '{"slug":"deep-app","meta":{"title":"t","description":«{"a":×5000»1«}×5000»}}',
    '«[×60000»',
    '{"domain":"huge.example-fuzz.com","is_primary":1e309}',
    '{"is_primary":18446744073709551616}',
    '{"is_primary":-0}',
    '{"domain":1e309}',
    '{"slug":-0,"meta":{"title":1e400}}',
    '{"limit":1e309,"offset":-1e309}',
    '1e309',
    '-0',
    'NaN',
    'Infinity',
    '{"domain":"«9×5000»"}',
    '{"domain":"\\ud800.example-fuzz.com"}',
    '{"domain":"\\udfff"}',
    '{"slug":"\\ud83d","meta":{"title":"\\ude00"}}',
    '{"domain":"a\\u0000b.example-fuzz.com"}',
    '{"__proto__":{"is_primary":true,"polluted":1},"domain":"proto.example-fuzz.com"}',
    '{"constructor":{"prototype":{"polluted":1}},"domain":"ctor.example-fuzz.com"}',
    '{"domain":"dup-a.example-fuzz.com","domain":"dup-b.example-fuzz.com"}',
    '{"meta":{"__proto__":{"title":"x"}},"slug":"proto-meta"}',
    '{"slug":"proto-app","meta":{"title":"t","__proto__":{"polluted":1}}}',
    '[]',
    '[{"domain":"array.example-fuzz.com"}]',
    'null',
    '"just a string"',
    '0',
    'true',
    '{}',
    '{"meta":[],"slug":[]}',
    '{"events":{},"url":[]}',
    '\ufeff{"domain":"bom.example-fuzz.com"}',
    '{"domain":"trailing.example-fuzz.com",}',
    "{'domain':'single.example-fuzz.com'}",
    '{"domain":"unterminated.example-fuzz.com"',
    '',
    ' ',
    '{"domain":"«a×66000»"}',
  ];
  const body = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 5, arbitrary: shaped.map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 3, arbitrary: fc.constantFrom(...literalBodies) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), hostname)
        .map(([bytes, h]) =>
          Buffer.concat([Buffer.from('{"domain":"'), Buffer.from(bytes), Buffer.from(`${h}"}`)]),
        ),
    },
    { weight: 1, arbitrary: fc.constant(Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf8])) },
  );
  const hostile: fc.Arbitrary<FuzzRequest> = fc.record({
    method,
    path,
    query,
    authorization,
    contentType,
    extraHeaders,
    body,
  });

  // Requests as a real client sends them (valid key, JSON, the routes' own shapes) with values
  // that are mostly valid: these get past validation into the services and the store.
  const mostly = <T, U>(valid: fc.Arbitrary<T>, odd: fc.Arbitrary<U>) =>
    fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: odd });
  const goodHostname = fc.stringMatching(
    /^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\.(example-fuzz\.com|fuzz-test\.net)$/,
  );
  const appBody = fc.record(
    {
      slug: mostly(fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,20}[a-z0-9]$/), weirdValue),
      meta: mostly(
        fc.record(
          { title: mostly(fc.string({ minLength: 1, maxLength: 30 }), weirdValue), description: weirdValue },
          {
            requiredKeys: ['title'],
          },
        ),
        weirdValue,
      ),
      origin_url: mostly(fc.webUrl(), weirdValue),
    },
    { requiredKeys: [] },
  );
  const json = <T>(arbitrary: fc.Arbitrary<T>) => arbitrary.map((value) => JSON.stringify(value) ?? 'null');
  const domainPath = mostly(fc.constant('{domain}'), goodHostname);
  const plausible: fc.Arbitrary<FuzzRequest> = fc
    .oneof(
      fc.record({
        method: fc.constantFrom('GET', 'GET', 'HEAD'),
        path: fc.oneof(
          fc.constantFrom(
            '/v1/apps',
            '/v1/apps/{app}',
            '/v1/apps/{app}/domains',
            '/v1/webhooks',
            '/v1/webhooks/{webhook}',
            '/v1/webhooks/{webhook}/deliveries',
            '/v1/edge/ask?domain={domain}',
            '/v1/edge/ask?domain=known.example-fuzz.com',
            '/healthz',
            '/readyz',
            '/openapi.json',
            '/metrics',
            '/tls/root.pem',
          ),
          domainPath.map((d) => `/v1/apps/{app}/domains/${d}`),
          fc.tuple(queryValue, queryValue).map(([l, o]) => `/v1/apps/{app}/domains?limit=${l}&offset=${o}`),
          fc.tuple(queryValue, queryValue).map(([l, o]) => `/v1/apps?limit=${l}&offset=${o}`),
        ),
        body: fc.constant(undefined),
      }),
      fc.record({ method: fc.constant('POST'), path: fc.constant('/v1/apps'), body: json(appBody) }),
      fc.record({ method: fc.constant('PATCH'), path: fc.constant('/v1/apps/{app}'), body: json(appBody) }),
      fc.record({
        method: fc.constant('POST'),
        path: fc.constant('/v1/apps/{app}/domains'),
        body: json(
          fc.record(
            {
              domain: mostly(goodHostname, fc.oneof(hostname, weirdValue)),
              is_primary: mostly(fc.boolean(), weirdValue),
            },
            { requiredKeys: ['domain'] },
          ),
        ),
      }),
      fc.record({
        method: fc.constant('PATCH'),
        path: domainPath.map((d) => `/v1/apps/{app}/domains/${d}`),
        body: json(fc.record({ is_primary: mostly(fc.boolean(), weirdValue) }, { requiredKeys: [] })),
      }),
      fc.record({
        method: fc.constantFrom('POST', 'DELETE'),
        path: domainPath.map((d) => `/v1/apps/{app}/domains/${d}/verify`),
        body: fc.constant(undefined),
      }),
      fc.record({
        method: fc.constant('DELETE'),
        path: goodHostname.map((d) => `/v1/apps/{app}/domains/${d}`),
        body: fc.constant(undefined),
      }),
      fc.record({
        method: fc.constant('POST'),
        path: fc.constant('/v1/webhooks'),
        body: json(
          fc.record(
            {
              url: mostly(fc.webUrl({ validSchemes: ['https'] }), weirdValue),
              events: mostly(
                fc.array(fc.constantFrom('domain.verified', 'domain.active', 'domain.moved')),
                weirdValue,
              ),
            },
            { requiredKeys: ['url'] },
          ),
        ),
      }),
    )
    .map((r) => ({
      ...r,
      query: '',
      authorization: 'Bearer {key}',
      contentType: r.body === undefined ? undefined : 'application/json',
      extraHeaders: {},
    }));

  return fc.oneof({ weight: 3, arbitrary: hostile }, { weight: 2, arbitrary: plausible });
}

interface FuzzRequest {
  method: string;
  /** With `{app}`-style placeholders and `«unit×count»` repetitions. */
  path: string;
  query: string;
  authorization: string | undefined;
  contentType: string | undefined;
  extraHeaders: Record<string, string>;
  body: string | Buffer | undefined;
}

/** Mostly well-formed HTTP with a broken part or two, so that many requests reach the routes. */
function rawRequestArbitrary() {
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

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

const KNOWN_DOMAIN = 'known.example-fuzz.com';

describe.each(backends)('the API under hostile input on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let api: TestApi;
  let watch: ServerWatch;
  let port: number;
  let dataDir: string;
  let keys: { write: string; read: string; other: string };
  let ids: Ids;
  /** Error-level log lines: a 500 leaves its stack here. */
  const errorLog: string[] = [];
  const statuses = new Map<number, number>();
  const deviations = new Map<string, number>();
  const tally = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

  /** Asserts one answer is acceptable; counts its status and any Fastify-native body. */
  const check = (seen: Seen, input: string) => {
    tally(statuses, seen.status);
    const verdict = judge(seen);
    if (verdict.deviation) tally(deviations, verdict.deviation.slice(0, 60));
    expect(verdict.problems, `${input}\n${describeSeen(seen)}`).toEqual([]);
  };

  /**
   * The app, domain and webhook the generators name as {app}, {domain} and {webhook}: made again
   * whenever a fuzzed DELETE (or PATCH) took them away, so later requests still reach them.
   */
  const ensureFixtures = async () => {
    if (!ids.appId || (await api.call(keys.write, 'GET', `/v1/apps/${ids.appId}`)).statusCode !== 200)
      ids.appId = await createTestApp(api, keys.write);
    const domainPath = `/v1/apps/${ids.appId}/domains/${ids.domain}`;
    if ((await api.call(keys.write, 'GET', domainPath)).statusCode !== 200) {
      const added = await api.call(keys.write, 'POST', `/v1/apps/${ids.appId}/domains`, {
        domain: ids.domain,
      });
      // 409 domain_in_use: it is still on an earlier app of the organization; move it here.
      if (added.statusCode === 409) {
        const apps = (await api.call(keys.write, 'GET', '/v1/apps?limit=1000')).json().results as {
          app_id: string;
        }[];
        for (const app of apps)
          await api.call(keys.write, 'DELETE', `/v1/apps/${app.app_id}/domains/${ids.domain}`);
        await api.call(keys.write, 'POST', `/v1/apps/${ids.appId}/domains`, { domain: ids.domain });
      }
      const now = await api.call(keys.write, 'GET', domainPath);
      expect(now.statusCode, now.body).toBe(200);
    }
    if (
      !ids.webhookId ||
      (await api.call(keys.write, 'GET', `/v1/webhooks/${ids.webhookId}`)).statusCode !== 200
    ) {
      const webhook = await api.call(keys.write, 'POST', '/v1/webhooks', {
        url: 'https://hooks.example.com/x',
      });
      expect(webhook.statusCode, webhook.body).toBe(200);
      ids.webhookId = webhook.json().webhook_id;
    }
  };

  /** Replaces the generators' placeholders with the fixtures' current ids and keys. */
  const fill = (text: string) =>
    expand(text).replace(
      /\{(app|other-app|domain|webhook|key|read-key|other-key)\}/g,
      (_, name: string) =>
        ({
          app: ids.appId,
          'other-app': ids.otherAppId,
          domain: ids.domain,
          webhook: ids.webhookId,
          key: keys.write,
          'read-key': keys.read,
          'other-key': keys.other,
        })[name] as string,
    );

  const raw = async (bytes: Buffer, methods: string[] = ['GET']) => {
    const result = await exchange(watch, port, bytes, methods);
    const input = bytes.toString('latin1').slice(0, 300);
    expect(result.error, input).toBeUndefined();
    for (const seen of result.responses) check(seen, input);
    return result;
  };

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    dataDir = mkdtempSync(path.join(tmpdir(), 'portico-fuzz-'));
    const config = loadConfig({
      PORTICO_DATA_DIR: dataDir,
      PORTICO_APPS_DOMAIN: 'apps.portico.test',
      // Verification asks the loopback DNS server, which knows none of these names: quick NXDOMAINs.
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_DNS_TIMEOUT_MS: '200',
      PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 5).toString('base64'),
      PORTICO_TLS_ISSUER: 'internal',
      // Thousands of requests a minute with one key: the fuzzer is not what the rate limit is for.
      PORTICO_RATE_LIMIT_PER_MINUTE: '0',
    });
    // Every part `serve` wires (webhooks, /metrics, the local CA), so that every route is there.
    const logger = pino(
      { level: 'error' },
      {
        write: (line: string) => {
          errorLog.push(line);
        },
      },
    );
    const metrics = new Metrics(store, systemClock);
    const services = await createServices({ config, store, clock: systemClock, logger, metrics });
    const app = await buildApi({ config, store, clock: systemClock, logger, services });
    api = wrapApi(app, config, store, systemClock);
    keys = {
      write: await api.keyFor('fuzz'),
      read: await api.keyFor('fuzz', 'read'),
      other: await api.keyFor('fuzz-other'),
    };
    ids = {
      appId: '',
      otherAppId: await createTestApp(api, keys.other),
      domain: KNOWN_DOMAIN,
      webhookId: '',
    };
    await ensureFixtures();
    watch = new ServerWatch(app.server);
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as net.AddressInfo).port;
  });

  beforeEach(async () => {
    await ensureFixtures();
    // Each test answers for the errors logged while it runs.
    errorLog.length = 0;
  });

  afterAll(async () => {
    const sorted = (map: Map<string | number, number>) =>
      JSON.stringify(Object.fromEntries([...map].sort((a, b) => String(a[0]).localeCompare(String(b[0])))));
    console.log(
      `api fuzz on ${backend.name}: all answers by status ${sorted(statuses)}; ` +
        `Fastify-native error bodies (known bugs) ${sorted(deviations)}`,
    );
    await api?.close();
    await dns?.close();
    await store?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const expectHealthy = async () => {
    const health = await api.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode, ready.body).toBe(200);
    const [overSocket] = (await raw(bytesOf('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'))).responses;
    expect(overSocket?.status).toBe(200);
    const authenticated = await api.call(keys.write, 'GET', `/v1/apps/${ids.appId}/domains/${ids.domain}`);
    expect(authenticated.statusCode, authenticated.body).toBe(200);
    // No 500 anywhere, not even one whose answer nobody read.
    expect(errorLog).toEqual([]);
  };

  it('answers random requests (methods, paths, headers, bodies) with no 500, in the documented shapes', async () => {
    const byOutcome = new Map<string, number>();
    const runs = 600;
    await fc.assert(
      fc.asyncProperty(requestArbitrary(), async (req) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.extraHeaders)) headers[name] = fill(value);
        if (req.authorization !== undefined) headers.authorization = fill(req.authorization);
        if (req.contentType !== undefined) headers['content-type'] = req.contentType;
        const response = await api.app.inject({
          method: req.method as 'GET',
          url: fill(`${req.path}${req.query}`),
          headers,
          ...(req.body === undefined
            ? {}
            : { payload: typeof req.body === 'string' ? expand(req.body) : req.body }),
        });
        tally(byOutcome, `${req.method} ${response.statusCode}`);
        check(
          { status: response.statusCode, headers: response.headers, body: response.body, method: req.method },
          `${req.method} ${req.path}${req.query}`,
        );
        if (req.method === 'DELETE' || req.method === 'PATCH') await ensureFixtures();
      }),
      { numRuns: runs },
    );
    const succeeded = [...byOutcome].filter(([k]) => / 2\d\d$/.test(k)).reduce((n, [, c]) => n + c, 0);
    console.log(
      `api fuzz on ${backend.name}: ${runs} random requests through inject(), ${succeeded} answered 2xx; ` +
        `by method and status ${JSON.stringify(Object.fromEntries([...byOutcome].sort()))}`,
    );
    // The authenticated paths were reached, not only the 401s and 404s in front of them.
    expect(succeeded).toBeGreaterThan(runs / 10);
    // Nothing reached Object.prototype.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).is_primary).toBeUndefined();
    await expectHealthy();
  });

  it('answers random bytes on a real socket with no 500 and no hang', async () => {
    const runs = 300;
    let answered = 0;
    let routed = 0;
    await fc.assert(
      fc.asyncProperty(rawRequestArbitrary(), async (r) => {
        const [target, targetBytes] = r.target;
        const lines: Buffer[] = [
          bytesOf(r.method, ' ', fill(target), Buffer.from(targetBytes), fill(r.query), ' ', r.version),
        ];
        for (const h of r.headers) lines.push(typeof h === 'string' ? Buffer.from(fill(h), 'latin1') : h);
        if (r.framing === 'exact') lines.push(Buffer.from(`Content-Length: ${r.body.length}`));
        if (r.framing === 'short') lines.push(Buffer.from(`Content-Length: ${r.body.length + 10}`));
        if (r.framing === 'long')
          lines.push(Buffer.from(`Content-Length: ${Math.max(0, r.body.length - 3)}`));
        if (r.framing === 'chunked') lines.push(Buffer.from('Transfer-Encoding: chunked'));
        const payload =
          r.framing === 'chunked' && r.body.length > 0
            ? bytesOf(`${r.body.length.toString(16)}\r\n`, r.body, '\r\n0\r\n\r\n')
            : r.body;
        const bytes = Buffer.concat([
          ...lines.flatMap((line) => [line, Buffer.from(r.eol)]),
          Buffer.from(r.eol),
          payload,
        ]);
        const result = await raw(bytes, [r.method, 'GET']);
        if (result.responses.length > 0) answered++;
        // Past Node's HTTP parser: answered by Portico's routes, not Fastify's clientErrorHandler.
        if (
          result.responses[0] &&
          !/"message":"Client Error"|HTTP header size/.test(result.responses[0].body)
        )
          routed++;
        if (r.method === 'DELETE' || r.method === 'PATCH') await ensureFixtures();
      }),
      { numRuns: runs },
    );
    console.log(
      `api fuzz on ${backend.name}: ${runs} random raw requests over a socket, ${answered} answered ` +
        `(the rest still waited for bytes that never came when the client closed), ` +
        `${routed} of them past Node's HTTP parser to the routes`,
    );
    // Not everything died in the parser: the routes saw a good share.
    expect(routed).toBeGreaterThan(runs / 5);
    await expectHealthy();
  });

  /** Hand-written broken HTTP: what each case sends and what it must get back. */
  const rawCases: {
    name: string;
    bytes: () => Buffer;
    methods?: string[];
    /** The one answer's status is one of these. */
    expect?: number[];
    /** Pipelined: exactly these answers, in order. */
    sequence?: number[];
  }[] = [
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

  it.each(rawCases)('answers $name on a real socket with no 500', async (rawCase) => {
    const { responses } = await raw(rawCase.bytes(), rawCase.methods);
    if (rawCase.sequence) expect(responses.map((seen) => seen.status)).toEqual(rawCase.sequence);
    if (rawCase.expect) {
      expect(responses).toHaveLength(1);
      expect(rawCase.expect, describeSeen(responses[0] as Seen)).toContain(responses[0]?.status);
    }
    expect(errorLog).toEqual([]);
  });

  it('is healthy after all of it', async () => {
    await expectHealthy();
  });

  // -------------------------------------------------------------------------------------------
  // Known bugs the fuzzer found: each fails until src/ is fixed.
  // -------------------------------------------------------------------------------------------

  it.each(['1e309', '1e20', '9223372036854775808', '«9×400»'])(
    'answers a list with offset=%s without a 500',
    async (offset) => {
      // Ajv coerces these to a number (1e309 to Infinity) that passes `minimum: 0` with no maximum,
      // and the store's OFFSET refuses it: SQLite "datatype mismatch", PostgreSQL a bigint error.
      for (const list of [`/v1/apps/${ids.appId}/domains`, '/v1/apps', '/v1/webhooks']) {
        const response = await api.call(keys.write, 'GET', `${list}?offset=${expand(offset)}`);
        expect([200, 422], `${list}: ${response.statusCode} ${response.body}`).toContain(response.statusCode);
      }
    },
  );

  it('answers a NUL character in path parameters, the query and stored text without a 500', async () => {
    // PostgreSQL text cannot hold U+0000: each of these reaches a query as a parameter and fails
    // with "invalid byte sequence for encoding UTF8: 0x00" (SQLite takes them).
    const requests: [string, string, unknown?][] = [
      ['GET', '/v1/apps/%00'],
      ['DELETE', '/v1/apps/app_%00'],
      ['GET', '/v1/apps/%00/domains'],
      ['POST', '/v1/apps/%00/domains', { domain: 'nul.example-fuzz.com' }],
      ['GET', `/v1/apps/${ids.appId}/domains/a%00.example-fuzz.com`],
      ['POST', `/v1/apps/${ids.appId}/domains/%00/verify`],
      ['DELETE', `/v1/apps/${ids.appId}/domains/%00`],
      ['PATCH', `/v1/apps/${ids.appId}/domains/%00`, { is_primary: true }],
      ['GET', '/v1/webhooks/%00'],
      ['GET', '/v1/webhooks/%00/deliveries'],
      ['GET', '/v1/edge/ask?domain=a%00.example-fuzz.com'],
      ['POST', '/v1/apps', { slug: 'nul-title', meta: { title: 'a\u0000b' } }],
      ['PATCH', `/v1/apps/${ids.appId}`, { meta: { title: 't', description: 'a\u0000b' } }],
    ];
    const failures: string[] = [];
    for (const [method, url, body] of requests) {
      const response = await api.call(keys.write, method, url, body);
      if (response.statusCode >= 500) failures.push(`${method} ${url} ${JSON.stringify(body ?? '')}`);
    }
    expect(failures).toEqual([]);
  });

  it('finds, verifies and removes by its path a domain longer than 100 characters', async () => {
    // 133 characters, well under the 253 a hostname may have: add accepts it. Fastify's default
    // maxParamLength (100) answers 414 FST_ERR_MAX_PARAM_LENGTH to every path that names it.
    const name = `${'a'.repeat(60)}.${'b'.repeat(60)}.example-fuzz.com`;
    const added = await api.call(keys.write, 'POST', `/v1/apps/${ids.appId}/domains`, { domain: name });
    expect(added.statusCode, added.body).toBe(200);
    const read = await api.call(keys.write, 'GET', `/v1/apps/${ids.appId}/domains/${name}`);
    expect(read.statusCode, read.body).toBe(200);
    const verify = await api.call(keys.write, 'POST', `/v1/apps/${ids.appId}/domains/${name}/verify`);
    expect(verify.statusCode, verify.body).toBe(200);
    const removed = await api.call(keys.write, 'DELETE', `/v1/apps/${ids.appId}/domains/${name}`);
    expect(removed.statusCode, removed.body).toBe(200);
  });

  it('answers a bad percent-encoding in the path with 400 bad_request in the ErrorResponse shape', async () => {
    // Fastify answers {"error":"Bad Request","code":"FST_ERR_BAD_URL",…} itself, bypassing the error handler.
    const response = await api.call(keys.write, 'GET', `/v1/apps/${ids.appId}/domains/%C0%AE`);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      success: false,
      status: 400,
      error: { type: 'ValidationError', code: 'bad_request' },
    });
  });

  it.each([
    {
      what: 'malformed HTTP (a header without a colon)',
      bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n',
      status: 400,
    },
    {
      what: 'an oversized header',
      bytes: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
      status: 431,
    },
  ])('answers $what in the ErrorResponse shape', async ({ bytes, status }) => {
    // Fastify's default clientErrorHandler writes {"error":"Bad Request","message":"Client Error","statusCode":400}.
    const { responses } = await exchange(watch, port, bytesOf(bytes), ['GET']);
    expect(responses).toHaveLength(1);
    const [response] = responses as [Seen];
    expect(response.status).toBe(status);
    expect(isErrorResponse(JSON.parse(response.body), status), response.body).toBe(true);
  });
});
