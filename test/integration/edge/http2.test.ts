/**
 * HTTP/2 at the edge (issue 14, item 2), through the edge as `serve` runs it, with real clients:
 * curl (`--http2`), nghttp, Node's `http2.connect`, and for what those refuse to send (a
 * connection-specific header, CR/LF in a value, a Host that contradicts `:authority`, a body longer
 * than its content-length, a Rapid Reset flood) a raw client writing frames by hand
 * (test/helpers/raw-h2.ts). Each case asserts what the client gets and what the origin received.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { MAX_CONCURRENT_STREAMS } from '../../../src/edge/http2-listener.js';
import type { ReceivedRequest } from '../../helpers/origin.js';
import { FRAME, frame, RawH2 } from '../../helpers/raw-h2.js';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { backends } from '../../helpers/stores.js';

/** RFC 9113 section 7: the error code of a stream reset for a malformed request. */
const H2_PROTOCOL_ERROR = 0x1;

import { waitUntil } from '../../helpers/wait.js';

const run = promisify(execFile);
const { NGHTTP2_CANCEL } = http2.constants;

/** Every name resolves to 127.0.0.1: clients use real names (SNI, `:authority`) against loopback. */
const loopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

/** HTTP/2 and HTTP/1.1 headers that must never reach a client over HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'te',
];

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

describe.each(backends)('HTTP/2 at the edge on the $name store', (backend) => {
  let served: ServedEdge;
  let dir: string;
  let caFile: string;
  const name = `shop.h2-${backend.name}.com`;
  let counter = 0;
  /** A target no other request used (the origin answers by path), to find it among what the origin received. */
  const uniquePath = (pathname = '/case') => `${pathname}?case=${++counter}`;
  const received = (target: string): ReceivedRequest[] =>
    served.origin.requests.filter((request) => request.url === target);
  const port = () => served.edge.httpsPort;
  /** The pseudo-headers of a request for `target` on the served name, for the raw client. */
  const fields = (target: string, method = 'GET', authority = name): [string, string][] => [
    [':method', method],
    [':scheme', 'https'],
    [':authority', authority],
    [':path', target],
  ];

  beforeAll(async () => {
    served = await openServedEdge(backend);
    await served.activate(name);
    dir = await mkdtemp(path.join(tmpdir(), 'portico-h2-'));
    caFile = path.join(dir, 'root.pem');
    await writeFile(caFile, served.root);
  });
  afterAll(async () => {
    await served?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A Node HTTP/2 session to `servername` (SNI and `:authority`), trusting the local root. */
  async function connect(servername = name): Promise<ClientHttp2Session> {
    const session = http2.connect(`https://${servername}:${port()}`, { ca: served.root, lookup: loopback });
    // The edge's SETTINGS too: its limits hold from then on.
    await Promise.all([once(session, 'connect'), once(session, 'remoteSettings')]);
    return session;
  }

  /** One request on `session`; `body` chunks are written in turn, the stream then ended. */
  function request(
    session: ClientHttp2Session,
    headers: http2.OutgoingHttpHeaders,
    body?: string,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const stream = session.request(headers, { endStream: body === undefined });
      let answer: IncomingHttpHeaders = {};
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (head) => {
        answer = head;
      });
      stream.on('data', (chunk: string) => {
        text += chunk;
      });
      stream.on('end', () => resolve({ status: Number(answer[':status']), headers: answer, body: text }));
      stream.on('error', reject);
      if (body !== undefined) stream.end(body);
    });
  }

  async function get(target: string, headers: http2.OutgoingHttpHeaders = {}): Promise<Answer> {
    const session = await connect();
    try {
      return await request(session, { ':path': target, ...headers });
    } finally {
      session.close();
    }
  }

  /** The same request over HTTP/1.1 (node:https, no ALPN), for comparison. */
  function getHttp1(target: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: port(),
            servername: name,
            path: target,
            // What an h2 client's :authority says, so that both forward the same host.
            headers: { host: `${name}:${port()}`, ...headers },
            ca: served.root,
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
        )
        .on('error', reject);
    });
  }

  const curl = (args: string[]) =>
    run('curl', [
      '--silent',
      '--show-error',
      '--resolve',
      `${name}:${port()}:127.0.0.1`,
      '--cacert',
      caFile,
      ...args,
    ]);

  /** The ALPN protocol agreed for a handshake offering `protocols` (false: none). */
  function alpn(protocols: string[] | undefined): Promise<string | false> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: port(),
        servername: name,
        ca: served.root,
        ALPNProtocols: protocols,
      });
      socket.once('secureConnect', () => {
        resolve(socket.alpnProtocol ?? false);
        socket.destroy();
      });
      socket.once('error', reject);
    });
  }

  it('negotiates h2 whenever a client offers it, HTTP/1.1 otherwise, on the one HTTPS port', async () => {
    expect(await alpn(['h2', 'http/1.1'])).toBe('h2');
    expect(await alpn(['http/1.1', 'h2'])).toBe('h2');
    expect(await alpn(['h2'])).toBe('h2');
    expect(await alpn(['http/1.1'])).toBe('http/1.1');
    expect(await alpn(undefined)).toBe(false);
    for (const [flag, version] of [
      ['--http2', '2'],
      ['--http1.1', '1.1'],
    ]) {
      const { stdout } = await curl([
        flag as string,
        '--output',
        '/dev/null',
        '--write-out',
        '%{http_version} %{http_code}',
        `https://${name}:${port()}/`,
      ]);
      expect(stdout).toBe(`${version} 200`);
    }
    const { stdout } = await run('nghttp', [
      '-nv',
      '-H',
      `:authority: ${name}:${port()}`,
      `https://127.0.0.1:${port()}/via-nghttp`,
    ]);
    expect(stdout).toContain('The negotiated protocol: h2');
    expect(stdout).toMatch(/recv \(stream_id=\d+\) :status: 200/);
  });

  it('forwards a request over h2 with the headers the same request gets over HTTP/1.1, cookies joined', async () => {
    const claims = {
      'x-forwarded-for': '198.51.100.66',
      'x-forwarded-host': 'attacker.example',
      'x-real-ip': '198.51.100.66',
      forwarded: 'for=198.51.100.66;host=attacker.example',
      'x-end-to-end': 'kept',
      'user-agent': 'portico-test',
    };
    const overH2 = uniquePath();
    const overH1 = uniquePath();
    expect((await get(overH2, { ...claims, cookie: ['a=1', 'b=2'] })).status).toBe(200);
    expect((await getHttp1(overH1, { ...claims, cookie: 'a=1; b=2' })).status).toBe(200);
    const [h2] = received(overH2);
    const [h1] = received(overH1);
    // Cookies split over two h2 fields arrive as one header, joined with '; ' (RFC 9113 §8.2.3).
    expect(h2?.headers.cookie).toBe('a=1; b=2');
    expect(h2?.headers).toEqual(h1?.headers);
    expect(Object.keys(h2?.headers ?? {}).filter((key) => key.startsWith(':'))).toEqual([]);
    expect(h2?.headers).toMatchObject({
      host: `127.0.0.1:${served.origin.port}`,
      'x-forwarded-for': '198.51.100.66, 127.0.0.1',
      'x-forwarded-host': `${name}:${port()}`,
      'x-forwarded-proto': 'https',
      'x-forwarded-port': String(port()),
      forwarded: `for=127.0.0.1;host="${name}:${port()}";proto=https`,
      'x-end-to-end': 'kept',
    });
    expect(h2?.headers['x-real-ip']).toBeUndefined();

    // nghttp sends two `cookie` fields too; curl --http2 gets through as well.
    const target = uniquePath('/nghttp');
    await run('nghttp', [
      '-H',
      `:authority: ${name}:${port()}`,
      '-H',
      'cookie: c=3',
      '-H',
      'cookie: d=4',
      `https://127.0.0.1:${port()}${target}`,
    ]);
    expect(received(target)[0]?.headers.cookie).toBe('c=3; d=4');
    const viaCurl = uniquePath('/curl');
    expect(JSON.parse((await curl(['--http2', `https://${name}:${port()}${viaCurl}`])).stdout).url).toBe(
      viaCurl,
    );
  });

  it('streams a request body and its response both ways: each chunk comes back before the next is sent', async () => {
    const session = await connect();
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/stream-echo' }, { endStream: false });
      stream.setEncoding('utf8');
      let echoed = '';
      stream.on('data', (chunk: string) => {
        echoed += chunk;
      });
      let sent = '';
      for (const chunk of ['first ', 'second ', 'third']) {
        stream.write(chunk);
        sent += chunk;
        // A relay that buffered either body would never echo a chunk before the stream ends.
        await waitUntil(() => echoed === sent);
      }
      stream.end();
      await once(stream, 'end');
      expect(echoed).toBe('first second third');
      // No length from the client: the origin got the body chunked, as HTTP/1.1 carries it.
      const [echo] = received('/stream-echo');
      expect(echo?.headers['transfer-encoding']).toBe('chunked');
      expect(echo?.headers['content-length']).toBeUndefined();
    } finally {
      session.close();
    }

    // A body with its length, from a file (nghttp -d).
    const file = path.join(dir, 'body.bin');
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 'portico-h2-');
    await writeFile(file, body);
    const { stdout } = await run('nghttp', [
      '-d',
      file,
      '-H',
      `:authority: ${name}:${port()}`,
      `https://127.0.0.1:${port()}/upload`,
    ]);
    expect(JSON.parse(stdout)).toEqual({
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  it('answers with h2-legal headers: no connection-specific ones, single-value fields once, cookies scoped as over HTTP/1.1', async () => {
    const hop = await get('/hop-headers');
    expect(hop.status).toBe(200);
    expect(hop.body).toBe('ok');
    for (const header of CONNECTION_SPECIFIC) expect(hop.headers[header], header).toBeUndefined();
    expect(hop.headers['content-type']).toBe('text/plain');
    expect(hop.headers['x-end-to-end']).toBe('kept');

    // The default answer: two Set-Cookie, and a header the origin listed in Connection.
    const plain = await get(uniquePath());
    expect(plain.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(plain.headers['x-origin-hop']).toBeUndefined();

    const appsDomain = served.rig.config.appsDomain;
    const cookies = [`keep=1; Domain=h2-${backend.name}.com; Path=/`, `toss=1; Domain=${appsDomain}; Path=/`];
    const target = `/set-cookie?${cookies.map((cookie) => `cookie=${encodeURIComponent(cookie)}`).join('&')}`;
    const overH2 = (await get(target)).headers['set-cookie'];
    expect(overH2).toEqual((await getHttp1(target)).headers['set-cookie']);
    expect(overH2).toHaveLength(2);
    expect(overH2?.[0]).toContain(`Domain=h2-${backend.name}.com`);
    expect(overH2?.[1]).not.toContain('Domain');
  });

  it('routes by :authority as HTTP/1.1 routes by Host: 421, 400, CONNECT refused, a redirect to the primary, 404 once removed', async () => {
    // Node warns once per process when an HTTP/2 response is given a header it drops (`connection`).
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    onTestFinished(() => {
      process.off('warning', onWarning);
    });
    const other = `other.h2-${backend.name}.com`;
    await served.activate(other);
    const misdirected = uniquePath();
    expect((await get(misdirected, { ':authority': other })).status).toBe(421);
    expect(received(misdirected)).toEqual([]);

    // Refused before routing; written raw, since real clients check :authority themselves. Who
    // refuses depends on the runtime: Node 24's HTTP/2 layer resets a malformed :authority itself
    // (PROTOCOL_ERROR) before the edge sees it, Node 20 hands it on and the edge answers 400. Either
    // way it is refused and never reaches the origin, which is what is asserted.
    const refused = (outcome: { status?: number; reset?: number }) =>
      outcome.status === 400 || outcome.reset === H2_PROTOCOL_ERROR;
    const raw = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    try {
      const badAuthority = uniquePath();
      raw.send(raw.headers(1, fields(badAuthority, 'GET', `${name}:@evil.com`)));
      expect(refused(await raw.outcome(1))).toBe(true);
      const twoNames = uniquePath();
      raw.send(raw.headers(3, [...fields(twoNames), ['host', 'evil.com']]));
      expect(refused(await raw.outcome(3))).toBe(true);
      const sameName = uniquePath();
      raw.send(raw.headers(5, [...fields(sameName), ['host', name.toUpperCase()]]));
      expect((await raw.outcome(5)).status).toBe(200);
      expect([received(badAuthority), received(twoNames), received(sameName).length]).toEqual([[], [], 1]);
    } finally {
      raw.close();
    }
    const session = await connect();
    try {
      const connectAnswer = await request(session, { ':method': 'CONNECT', ':authority': 'evil.com:443' });
      expect(connectAnswer.status).toBe(405);
    } finally {
      session.close();
    }

    // A non-primary name redirects to the primary; a removed one is 404 on an open connection.
    await served.rig.api.call(served.rig.key, 'PATCH', `/v1/apps/${served.rig.appId}/domains/${other}`, {
      is_primary: true,
    });
    await waitUntil(async () => (await get('/a?b=1')).status === 308);
    expect((await get('/a?b=1')).headers.location).toBe(`https://${other}:${port()}/a?b=1`);
    await served.rig.api.call(served.rig.key, 'PATCH', `/v1/apps/${served.rig.appId}/domains/${other}`, {
      is_primary: false,
    });
    const open = await connect(other);
    try {
      expect((await request(open, { ':path': '/' })).status).toBe(200);
      await served.rig.api.call(served.rig.key, 'DELETE', `/v1/apps/${served.rig.appId}/domains/${other}`);
      await waitUntil(async () => (await request(open, { ':path': '/' })).status === 404);
    } finally {
      open.close();
    }
    await waitUntil(async () => (await get('/a')).status === 200);
    expect(warnings.map((warning) => warning.message)).toEqual([]);
  });

  it('aborts the origin request when a client resets its stream, waiting for an answer or mid-upload', async () => {
    const session = await connect();
    try {
      const hang = uniquePath('/hang');
      const waiting = session.request({ ':path': hang });
      waiting.on('error', () => {});
      await waitUntil(() => received(hang).length === 1);
      waiting.close(NGHTTP2_CANCEL);
      await waitUntil(() => received(hang)[0]?.aborted === true);
      // The session goes on.
      expect((await request(session, { ':path': '/' })).status).toBe(200);
    } finally {
      session.close();
    }
    // Mid-upload, written raw: Node's client ends the stream (END_STREAM) before resetting it.
    const raw = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    try {
      const upload = uniquePath('/upload');
      raw.send(raw.headers(1, fields(upload, 'POST'), false), frame(FRAME.DATA, 0, 1, Buffer.alloc(1024)));
      await waitUntil(() => received(upload).length === 1);
      raw.send(frame(FRAME.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, NGHTTP2_CANCEL])));
      await waitUntil(() => received(upload)[0]?.aborted === true);
    } finally {
      raw.close();
    }
  });

  it('refuses what must not reach an HTTP/1.1 origin from an h2 request, as RFC 9113 §8.2 asks', async () => {
    const open = () => RawH2.connect({ port: port(), servername: name, ca: served.root });
    // Connection-specific fields make the request malformed: the stream is reset, nothing forwarded.
    for (const [field, value] of [
      ['transfer-encoding', 'chunked'],
      ['connection', 'close'],
      ['keep-alive', 'timeout=5'],
      ['upgrade', 'websocket'],
      ['proxy-connection', 'keep-alive'],
      ['te', 'gzip'],
    ] as const) {
      const raw = await open();
      const target = uniquePath();
      raw.send(raw.headers(1, [...fields(target), [field, value]]));
      const outcome = await raw.outcome(1);
      raw.close();
      expect({ field, status: outcome.status, reset: outcome.reset !== undefined }).toEqual({
        field,
        status: undefined,
        reset: true,
      });
      expect(received(target)).toEqual([]);
    }
    // A CR, LF or NUL in a value: nghttp2 drops the field (or refuses the stream); it never reaches
    // the origin, whose HTTP/1.1 request it would otherwise split.
    for (const value of ['a\r\nx-injected: 1', 'a\nx-injected: 1', 'a\rb', 'a\0b']) {
      const raw = await open();
      const target = uniquePath();
      raw.send(raw.headers(1, [...fields(target), ['x-value', value]]));
      await raw.outcome(1);
      raw.close();
      for (const seen of received(target)) {
        expect(seen.headers['x-value']).toBeUndefined();
        expect(seen.headers['x-injected']).toBeUndefined();
      }
    }
    // DATA beyond the content-length: refused before the origin gets a complete request.
    const longer = await open();
    const longerPath = uniquePath('/upload');
    longer.send(
      longer.headers(1, [...fields(longerPath, 'POST'), ['content-length', '3']], false),
      frame(FRAME.DATA, 0x1, 1, Buffer.from('hello')),
    );
    const longerOutcome = await longer.outcome(1);
    longer.close();
    expect(longerOutcome.status).toBeUndefined();
    expect(received(longerPath).every((seen) => seen.aborted === true)).toBe(true);
    // The stream ends short of its content-length, after the origin got its head and first bytes:
    // the origin request is aborted, never taken as complete.
    const shorter = await open();
    const shorterPath = uniquePath('/upload');
    shorter.send(
      shorter.headers(1, [...fields(shorterPath, 'POST'), ['content-length', '10']], false),
      frame(FRAME.DATA, 0, 1, Buffer.from('hel')),
    );
    await waitUntil(() => received(shorterPath).length === 1);
    shorter.send(frame(FRAME.DATA, 0x1, 1, Buffer.from('lo')));
    const shorterOutcome = await shorter.outcome(1);
    shorter.close();
    expect(shorterOutcome.status).toBeUndefined();
    await waitUntil(() => received(shorterPath)[0]?.aborted === true);
  });

  it(`keeps its limits: ${MAX_CONCURRENT_STREAMS} streams at once, the header list size, Rapid Reset ends the session`, async () => {
    const session = await connect();
    expect(session.remoteSettings).toMatchObject({
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: 16 * 1024,
      enablePush: false,
    });
    const big = uniquePath();
    const tooBig = session.request({ ':path': big, 'x-big': 'b'.repeat(20_000) });
    tooBig.on('error', () => {});
    tooBig.resume();
    await new Promise((resolve) => tooBig.once('close', resolve));
    expect(tooBig.rstCode).toBeGreaterThan(0);
    expect(received(big)).toEqual([]);
    session.close();

    // A client opening one stream more than the limit while the others are open loses the
    // connection (nghttp2 takes it as a connection error); the origin never gets more from it.
    const raw = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    await raw.until((frames) => frames.some((f) => f.type === FRAME.SETTINGS));
    const held = uniquePath('/held');
    const ids = Array.from({ length: MAX_CONCURRENT_STREAMS }, (_, i) => 1 + 2 * i);
    raw.send(...ids.map((id) => raw.headers(id, fields(held))));
    await waitUntil(() => received(held).length === MAX_CONCURRENT_STREAMS);
    raw.send(raw.headers(1 + 2 * MAX_CONCURRENT_STREAMS, fields(held)));
    await raw.until(() => false);
    expect(raw.closed).toBe(true);
    expect(received(held)).toHaveLength(MAX_CONCURRENT_STREAMS);
    // Its streams went with it: the origin requests are aborted.
    await waitUntil(() => received(held).every((seen) => seen.aborted === true));

    // Rapid Reset (CVE-2023-44487): streams opened and reset at once, thousands of them.
    const flood = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    const target = uniquePath('/flood');
    for (let batch = 0; batch < 50 && !flood.closed; batch++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 100; i++) {
        const id = 1 + 2 * (batch * 100 + i);
        frames.push(
          flood.headers(id, fields(target)),
          frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])),
        );
      }
      flood.send(...frames);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await flood.until((frames) => frames.some((f) => f.type === FRAME.GOAWAY));
    flood.close();
    expect(received(target).length).toBeLessThan(MAX_CONCURRENT_STREAMS);
    // The edge goes on serving everyone else.
    expect((await get(uniquePath())).status).toBe(200);
  });

  it('serves HTTP/1.1 and WebSockets on the same port, beside h2 connections', async () => {
    const h2 = await connect();
    try {
      const target = uniquePath();
      expect((await getHttp1(target)).status).toBe(200);
      const socket = new WebSocket(`wss://${name}:${port()}/chat`, { ca: served.root, lookup: loopback });
      const messages: string[] = [];
      socket.on('message', (data) => messages.push(String(data)));
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      socket.send('over http/1.1');
      await waitUntil(() => messages.length === 1);
      expect(messages).toEqual(['over http/1.1']);
      socket.close();
      expect((await request(h2, { ':path': target })).status).toBe(200);
    } finally {
      h2.close();
    }
  });

  it('lets h2 streams in flight finish when the edge closes, after telling the client GOAWAY', async () => {
    const before = served.origin.requests.filter((seen) => seen.url === '/held').length;
    const session = await connect();
    const goaway = once(session, 'goaway');
    const answer = request(session, { ':path': '/held' });
    await waitUntil(
      () => served.origin.requests.filter((seen) => seen.url === '/held').length === before + 1,
    );
    const closed = served.edge.close();
    await goaway;
    served.origin.release();
    expect(await answer).toMatchObject({ status: 200, body: 'released' });
    await closed;
  });
});
