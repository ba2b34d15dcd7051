/**
 * What the edge's HTTP/2 streams answer now that it serves them on node:http2's core API
 * (src/edge/http2-exchange.ts) rather than Node's compatibility layer, which did some of it before:
 * responses without a body (HEAD, 204, 304), `Expect`, streams reset with an error code (which
 * Node reports as an 'error' event: without a listener, a crash), a body the origin cuts short,
 * and metrics. With real clients (curl --http2, nghttp, Node's http2) and, for what they will not
 * send, the raw client (test/helpers/raw-h2.ts). The rest of HTTP/2 at the edge is http2.test.ts.
 *
 * The store does not matter to any of this: SQLite only.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedRequest } from '../../helpers/origin.js';
import { FLAG, FRAME, frame, RawH2 } from '../../helpers/raw-h2.js';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const run = promisify(execFile);
const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_PROTOCOL_ERROR } = http2.constants;
const backend = backends[0];

/** Every name resolves to 127.0.0.1: clients use real names (SNI, `:authority`) against loopback. */
const loopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The RST_STREAM code the stream ended with, 0 when it ended cleanly. */
  rstCode: number;
}

describe('HTTP/2 answers at the edge', () => {
  let served: ServedEdge;
  let dir: string;
  let caFile: string;
  const name = 'answers.h2-core.com';
  let counter = 0;
  const uniquePath = (pathname = '/case') =>
    `${pathname}${pathname.includes('?') ? '&' : '?'}case=${++counter}`;
  const received = (target: string): ReceivedRequest[] =>
    served.origin.requests.filter((request) => request.url === target);
  const port = () => served.edge.httpsPort;
  const fields = (target: string, method = 'GET'): [string, string][] => [
    [':method', method],
    [':scheme', 'https'],
    [':authority', name],
    [':path', target],
  ];

  beforeAll(async () => {
    if (!backend) throw new Error('no store backend');
    served = await openServedEdge(backend);
    await served.activate(name);
    dir = await mkdtemp(path.join(tmpdir(), 'portico-h2-answers-'));
    caFile = path.join(dir, 'root.pem');
    await writeFile(caFile, served.root);
  });
  afterAll(async () => {
    await served?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function connect(): Promise<ClientHttp2Session> {
    const session = http2.connect(`https://${name}:${port()}`, { ca: served.root, lookup: loopback });
    await once(session, 'connect');
    return session;
  }

  /** One request; resolves however the stream ends (an answer, or a reset with its code). */
  function request(session: ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<Answer> {
    return new Promise((resolve) => {
      const stream = session.request(headers);
      let head: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (answer) => {
        head = answer;
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', () => {});
      stream.on('close', () =>
        resolve({
          status: Number(head[':status'] ?? 0),
          headers: head,
          body: Buffer.concat(chunks),
          rstCode: stream.rstCode ?? 0,
        }),
      );
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

  /** Requests answered per status class so far, as the edge's metrics count them. */
  async function answeredByClass(): Promise<Record<string, number>> {
    const metrics = served.rig.services.metrics;
    if (!metrics) throw new Error('the served edge keeps no metrics');
    const counts: Record<string, number> = {};
    for (const value of (await metrics.edgeRequests.get()).values) {
      if (value.metricName?.endsWith('_count')) counts[String(value.labels.status_class)] = value.value;
    }
    return counts;
  }

  it('ends the stream with the response head for HEAD, 204 and 304: no DATA frame, headers as over GET', async () => {
    const raw = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    try {
      const cases: [number, string, string, number][] = [
        [1, 'HEAD', uniquePath('/'), 200],
        [3, 'GET', uniquePath('/status?code=204'), 204],
        [5, 'GET', uniquePath('/status?code=304'), 304],
      ];
      for (const [id, method, target] of cases) raw.send(raw.headers(id, fields(target, method)));
      for (const [id, method, target, status] of cases) {
        expect({ method, target, ...(await raw.outcome(id)) }).toEqual({
          method,
          target,
          status,
          reset: undefined,
          goaway: undefined,
        });
        const frames = raw.frames.filter((f) => f.streamId === id);
        expect(frames.map((f) => f.type)).toEqual([FRAME.HEADERS]);
        expect((frames[0]?.flags ?? 0) & FLAG.END_STREAM).toBe(FLAG.END_STREAM);
        expect(received(target)).toHaveLength(1);
      }
    } finally {
      raw.close();
    }

    // What a client reads: the head the same GET gets, without its body.
    const target = uniquePath('/');
    const [head, full] = [await get(target, { ':method': 'HEAD' }), await get(target)];
    expect(head).toMatchObject({ status: 200, rstCode: 0, body: Buffer.alloc(0) });
    expect(head.headers['content-type']).toBe('application/json');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(full.body.length).toBe(Number(full.headers['content-length']));
    const { stdout } = await curl(['--http2', '--head', `https://${name}:${port()}/status?code=204`]);
    expect(stdout).toMatch(/^HTTP\/2 204/);
    expect(stdout).toContain('x-status: 204');
  });

  it('answers Expect: 100-continue with 100 before the body is sent, then proxies the body; refuses other expectations with 417', async () => {
    const body = Buffer.alloc(256 * 1024 + 3, 'continue-');
    const digest = createHash('sha256').update(body).digest('hex');
    const session = await connect();
    try {
      const stream = session.request(
        { ':method': 'POST', ':path': '/upload', expect: '100-continue' },
        { endStream: false },
      );
      stream.on('error', () => {});
      // The body is held back until the edge says go on, as a client that asks must.
      await once(stream, 'continue');
      stream.end(body);
      const [head] = (await once(stream, 'response')) as [IncomingHttpHeaders];
      stream.setEncoding('utf8');
      let text = '';
      for await (const chunk of stream) text += chunk;
      expect(head[':status']).toBe(200);
      expect(JSON.parse(text)).toEqual({ bytes: body.length, sha256: digest });

      // Case does not matter (RFC 9110 §10.1.1); an expectation the edge cannot meet is 417, unforwarded.
      const file = path.join(dir, 'expect.bin');
      await writeFile(file, body);
      const viaCurl = await curl([
        '--http2',
        '--verbose',
        '--header',
        'Expect: 100-Continue',
        '--data-binary',
        `@${file}`,
        `https://${name}:${port()}/upload`,
      ]);
      expect(viaCurl.stderr).toMatch(/< HTTP\/2 100/);
      expect(JSON.parse(viaCurl.stdout)).toEqual({ bytes: body.length, sha256: digest });
      const refused = uniquePath('/upload');
      const other = await request(session, { ':method': 'GET', ':path': refused, expect: 'something-else' });
      expect(other.status).toBe(417);
      expect(received(refused)).toEqual([]);
    } finally {
      session.close();
    }
  });

  it('cuts a body the origin cuts short so that no client takes it for complete, with or without a content-length', async () => {
    // Without a length (chunked from the origin), only the stream's end says whether the body is
    // whole: the edge resets it (INTERNAL_ERROR) and never sends END_STREAM.
    const raw = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    try {
      raw.send(raw.headers(1, fields(uniquePath('/truncated?chunked=1'))));
      expect(await raw.outcome(1)).toMatchObject({ status: 200, reset: NGHTTP2_INTERNAL_ERROR });
      const ended = raw.frames.filter(
        (f) => f.streamId === 1 && f.type !== FRAME.RST_STREAM && f.flags & FLAG.END_STREAM,
      );
      expect(ended).toEqual([]);
    } finally {
      raw.close();
    }
    // With a length, the body is short of it (RFC 9113 §8.1.1: malformed). Either way, every client
    // reports an error, and none a complete body.
    for (const target of ['/truncated', '/truncated?chunked=1']) {
      const answer = await get(uniquePath(target));
      expect({ target, status: answer.status, bytes: answer.body.length }).toEqual({
        target,
        status: 200,
        bytes: 10,
      });
      expect(answer.rstCode).not.toBe(0);
      const viaCurl = await curl([
        '--http2',
        '--output',
        '/dev/null',
        `https://${name}:${port()}${uniquePath(target)}`,
      ]).then(
        () => 0,
        (error: { code: number }) => error.code,
      );
      expect({ target, curlExit: viaCurl }).not.toEqual({ target, curlExit: 0 });
      const viaNghttp = await run('nghttp', [
        '-v',
        '-H',
        `:authority: ${name}:${port()}`,
        `https://127.0.0.1:${port()}${uniquePath(target)}`,
      ]).catch((error: { stdout: string }) => error);
      // nghttp shows the stream's end: a reset (from the edge, or its own for a short body).
      expect(viaNghttp.stdout).toMatch(/(recv|send) RST_STREAM/);
    }
  });

  it('survives streams reset with an error code, waiting for the origin or mid-upload, and aborts their origin requests', async () => {
    const raw = await RawH2.connect({ port: port(), servername: name, ca: served.root });
    try {
      // Any code but NO_ERROR and CANCEL makes Node emit 'error' on the server's stream.
      const hang = uniquePath('/hang');
      raw.send(raw.headers(1, fields(hang)));
      await waitUntil(() => received(hang).length === 1);
      raw.send(frame(FRAME.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, NGHTTP2_INTERNAL_ERROR])));
      await waitUntil(() => received(hang)[0]?.aborted === true);

      const upload = uniquePath('/upload');
      raw.send(raw.headers(3, fields(upload, 'POST'), false), frame(FRAME.DATA, 0, 3, Buffer.alloc(1024)));
      await waitUntil(() => received(upload).length === 1);
      raw.send(frame(FRAME.RST_STREAM, 0, 3, Buffer.from([0, 0, 0, NGHTTP2_PROTOCOL_ERROR])));
      await waitUntil(() => received(upload)[0]?.aborted === true);

      // The connection and the edge go on.
      const after = uniquePath();
      raw.send(raw.headers(5, fields(after)));
      expect((await raw.outcome(5)).status).toBe(200);
    } finally {
      raw.close();
    }
    expect((await get(uniquePath())).status).toBe(200);
  });

  it('counts each answered h2 request in the metrics under its status class, and a stream reset before its answer not at all', async () => {
    const before = await answeredByClass();
    const session = await connect();
    try {
      expect((await request(session, { ':path': uniquePath() })).status).toBe(200);
      expect((await request(session, { ':path': uniquePath(), ':method': 'HEAD' })).status).toBe(200);
      expect((await request(session, { ':path': uniquePath('/status?code=404') })).status).toBe(404);
      const hang = uniquePath('/hang');
      const waiting = session.request({ ':path': hang });
      waiting.on('error', () => {});
      await waitUntil(() => received(hang).length === 1);
      waiting.close(NGHTTP2_INTERNAL_ERROR);
      await waitUntil(() => received(hang)[0]?.aborted === true);
    } finally {
      session.close();
    }
    await waitUntil(async () => ((await answeredByClass())['4xx'] ?? 0) === (before['4xx'] ?? 0) + 1);
    const after = await answeredByClass();
    expect(after['2xx'] ?? 0).toBe((before['2xx'] ?? 0) + 2);
    expect(after['5xx'] ?? 0).toBe(before['5xx'] ?? 0);
    expect(Object.values(after).reduce((sum, n) => sum + n, 0)).toBe(
      Object.values(before).reduce((sum, n) => sum + n, 0) + 3,
    );
  });
});
