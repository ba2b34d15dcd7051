import fc from 'fast-check';

/*
 * Requests for `inject()` and the values they are made of, written in the notations of
 * placeholders.ts (`{app}` for a fixture, `«unit×count»` for a repetition).
 */

/** encodeURIComponent, which refuses lone surrogates: those become an encoded surrogate (invalid UTF-8). */
export const encode = (text: string) => {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80';
  }
};

export const hostileSegments = [
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

export const queryValue = fc.oneof(
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

/** A request for `inject()`. */
export interface FuzzRequest {
  method: string;
  /** With `{app}`-style placeholders and `«unit×count»` repetitions. */
  path: string;
  query: string;
  authorization: string | undefined;
  contentType: string | undefined;
  extraHeaders: Record<string, string>;
  body: string | Buffer | undefined;
}

/**
 * Requests through `inject()`: hostile ones (any method, path, header and body, most of them refused
 * before a route runs) and plausible ones (a real client's, with odd values) that reach the services
 * and the store.
 */
export function requestArbitrary(): fc.Arbitrary<FuzzRequest> {
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
