// The runtime's floor for bench/edge-h2.ts: the least a Node.js server can do per request over
// HTTPS, answering the origin's tiny body at once, with no proxying, routing or headers of its own.
// One process per server, started as `h2-floor-server.ts <kind>` with the certificate's files in
// BENCH_CERT_FILE and BENCH_KEY_FILE, the edge's TLS profile (versions, suites, groups), and one
// JavaScript thread, as the edge has:
// - `https`: node:https (HTTP/1.1), what the edge's HTTP/1.1 connections go through;
// - `h2-compat`: node:http2's compatibility API (request, response objects), which the edge used
//   for h2 before it served streams itself;
// - `h2-stream`: node:http2's core API (`stream` events, `respond()`), what the edge uses for h2.
// It prints `listening on https://127.0.0.1:PORT` once bound.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { edgeTlsProfile } from '../src/edge/tls-profile.js';

const BODY = Buffer.from('hello');
const kind = process.argv[2];
const tls = {
  ...edgeTlsProfile().serverOptions,
  cert: readFileSync(process.env.BENCH_CERT_FILE ?? ''),
  key: readFileSync(process.env.BENCH_KEY_FILE ?? ''),
};

let server: https.Server | http2.Http2SecureServer;
if (kind === 'https') {
  server = https.createServer(tls, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length }).end(BODY);
  });
} else if (kind === 'h2-compat') {
  server = http2.createSecureServer(tls, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length }).end(BODY);
  });
} else if (kind === 'h2-stream') {
  server = http2.createSecureServer(tls);
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length });
    stream.end(BODY);
  });
} else {
  throw new Error(`usage: h2-floor-server.ts https|h2-compat|h2-stream (got ${kind})`);
}
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on https://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
