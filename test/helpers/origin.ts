/**
 * A real HTTP origin on loopback for edge tests: what an App's `origin_url` points at. It records
 * what it receives and answers by path:
 * - `POST|PUT /upload`: reads the body as a stream, answers `{ bytes, sha256 }`;
 * - `GET /download?bytes=N`: streams N bytes (`patternChunk` repeated) with backpressure;
 * - `GET /hang`: never answers (until the origin closes);
 * - `GET /held`: answers 200 `released` when the test calls `release()`;
 * - `GET /set-cookie?cookie=…&cookie=…`: answers with one `Set-Cookie` per `cookie` parameter, as
 *   given, and the JSON below;
 * - `POST /stream-echo`: sends its response head at once, then each chunk of the body as it arrives (a
 *   client sees its first bytes back before it sends the rest only if nothing buffers in between);
 * - `GET /hop-headers`: a response carrying every header HTTP/2 forbids (RFC 9113 §8.2.2) and
 *   `Content-Type` twice, then `ok`;
 * - `GET /status?code=N`: answers status N with `X-Status: N` and, where N allows one, a body `ok`;
 * - `GET /truncated`: promises 1,000 bytes (`Content-Length`), sends 10, then drops the connection;
 *   with `?chunked=1`, sends the 10 bytes chunked (no length) before dropping it;
 * - WebSocket on any path: echoes each message; `/ws-reject` declines the upgrade with 401; the
 *   101 carries one `Set-Cookie` per `cookie` query parameter;
 * - anything else: 200 with `{ method, url, headers }` as JSON, and response headers that test
 *   relaying: `Set-Cookie` twice, `X-Origin-Hop` listed in `Connection` (must not reach the client).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer } from 'ws';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Set when the connection closed before the origin's response was complete (client gone). */
  aborted?: boolean;
}

export interface TestOrigin {
  /** `http://127.0.0.1:{port}`. */
  readonly url: string;
  readonly port: number;
  /** Requests received, in order (upgrades included). */
  readonly requests: ReceivedRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** Answers every `/held` request received so far. */
  release(): void;
  close(): Promise<void>;
}

/** 64 KiB of a repeating byte pattern: what `/download` streams and upload tests send. */
export const patternChunk: Buffer = Buffer.alloc(64 * 1024, 'portico-edge-');

export async function startOrigin(): Promise<TestOrigin> {
  const requests: ReceivedRequest[] = [];
  const held: ServerResponse[] = [];
  let connections = 0;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    const received: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    requests.push(received);
    res.once('close', () => {
      if (!res.writableFinished) received.aborted = true;
    });

    if (url.pathname === '/upload') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => json(res, { bytes, sha256: hash.digest('hex') }));
      return;
    }
    if (url.pathname === '/download') {
      streamPattern(res, Number(url.searchParams.get('bytes') ?? 0));
      return;
    }
    if (url.pathname === '/stream-echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.flushHeaders();
      req.pipe(res);
      return;
    }
    if (url.pathname === '/hop-headers') {
      res.setHeader('content-type', ['text/plain', 'text/html']);
      res.setHeader('keep-alive', 'timeout=5');
      res.setHeader('proxy-connection', 'keep-alive');
      res.setHeader('upgrade', 'h2c');
      res.setHeader('http2-settings', 'AAMAAABkAARAAAAAAAIAAAAA');
      res.setHeader('te', 'trailers');
      res.setHeader('x-end-to-end', 'kept');
      // No length: Node sends `Transfer-Encoding: chunked` (and `Connection: keep-alive`).
      res.end('ok');
      return;
    }
    if (url.pathname === '/status') {
      const code = Number(url.searchParams.get('code'));
      // Node sends no body for the statuses that cannot have one (204, 304), whatever is written.
      res.writeHead(code, { 'x-status': String(code), 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (url.pathname === '/truncated') {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        ...(url.searchParams.has('chunked') ? {} : { 'content-length': 1000 }),
      });
      res.write(Buffer.alloc(10, 'x'), () => res.destroy());
      return;
    }
    if (url.pathname === '/hang') return;
    if (url.pathname === '/held') {
      held.push(res);
      return;
    }
    if (url.pathname === '/set-cookie') {
      res.setHeader('set-cookie', url.searchParams.getAll('cookie'));
      json(res, { method: req.method, url: req.url, headers: req.headers });
      return;
    }
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('connection', 'keep-alive, X-Origin-Hop');
    res.setHeader('x-origin-hop', 'must not reach the client');
    json(res, { method: req.method, url: req.url, headers: req.headers });
  });
  server.on('connection', () => {
    connections += 1;
  });

  const sockets = new WebSocketServer({
    server,
    verifyClient: (info, callback) => {
      requests.push({ method: info.req.method ?? '', url: info.req.url ?? '', headers: info.req.headers });
      if (info.req.url === '/ws-reject') callback(false, 401, 'Unauthorized');
      else callback(true);
    },
  });
  sockets.on('headers', (headers, req) => {
    for (const cookie of new URL(req.url ?? '/', 'http://origin').searchParams.getAll('cookie')) {
      headers.push(`Set-Cookie: ${cookie}`);
    }
  });
  sockets.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    release() {
      for (const res of held.splice(0)) res.end('released');
    },
    async close() {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface OriginProcess {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The same origin in a child process, for a test that measures its own process's memory: the
 * origin's socket buffers then do not count. The child exits when its stdin closes, so it cannot
 * outlive the test run.
 */
export async function startOriginProcess(): Promise<OriginProcess> {
  const script = [
    `const { startOrigin } = await import(${JSON.stringify(import.meta.url)});`,
    'const origin = await startOrigin();',
    'process.stdin.on("end", () => origin.close().then(() => process.exit(0))).resume();',
    'console.log(origin.port);',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (line: Buffer) => resolve(Number(String(line).trim())));
    child.once('exit', (code) => reject(new Error(`the origin process exited (${code}) before listening`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      child.stdin?.end();
      await exited;
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (connections are refused): an origin that is down. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function json(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function streamPattern(res: ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let sent = 0;
  const writeMore = (): void => {
    while (sent < total) {
      const size = Math.min(patternChunk.length, total - sent);
      sent += size;
      const more = res.write(size === patternChunk.length ? patternChunk : patternChunk.subarray(0, size));
      if (!more) {
        res.once('drain', writeMore);
        return;
      }
    }
    res.end();
  };
  writeMore();
}
