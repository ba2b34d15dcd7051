/**
 * A test double in front of a real Pebble: an HTTPS reverse proxy that passes every ACME request
 * through unchanged, except that it adds to the directory's `meta` what Pebble 2.4 does not have
 * (`caaIdentities`), and records each request, so a test can tell what reached the CA. It can also
 * play an outage (`outage(true)`: every connection is cut), which stopping Pebble cannot: Pebble
 * keeps its state in memory, and a restarted one knows none of the certificates it issued.
 *
 * It forwards the client's Host header, so Pebble builds every URL it hands out (orders,
 * authorizations, Location headers) on the front's address, and checks the URL signed into each
 * JWS against that same address: the whole conversation goes through the front. It is a fake only
 * in what it adds to the directory; everything the CA does, Pebble does.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLocalhostTls, type Pebble } from './pebble.js';

export interface AcmeFront {
  /** The directory to give the client, served by the front. */
  directoryUrl: string;
  /** The CA of the front's own HTTPS listener, as `PORTICO_ACME_CA_FILE` takes it. */
  caFile: string;
  /** Every request that reached the front, in order: method and path. */
  readonly requests: { method: string; path: string }[];
  /** The names of each order the CA created (answered 201 to a POST to the directory's `newOrder`), in order. */
  readonly orders: string[][];
  /** How many orders for `hostname` reached the CA. */
  ordersFor(hostname: string): number;
  /** While on, the CA is unreachable: connections are closed as soon as they are made. */
  outage(on: boolean): void;
  close(): Promise<void>;
}

/** Starts a front for `pebble` whose directory's `meta` has `meta` added to it. */
export async function startAcmeFront(pebble: Pebble, meta: Record<string, unknown>): Promise<AcmeFront> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portico-acme-front-'));
  const tls = await createLocalhostTls(dir);
  const upstream = new URL(pebble.directoryUrl);
  const agent = new https.Agent({ ca: pebble.caPem, keepAlive: true });
  const requests: { method: string; path: string }[] = [];
  const orders: string[][] = [];
  let newOrderPath: string | undefined;

  const server = https.createServer(
    { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) },
    async (req, res) => {
      const method = req.method ?? 'GET';
      const target = req.url ?? '/';
      requests.push({ method, path: target });
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const isNewOrder = method === 'POST' && target === newOrderPath;
      const forward = https.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method,
          path: target,
          headers: req.headers,
          agent,
        },
        (answer) => {
          // Created: an order the CA took (one refused for a stale nonce, and resent, counts once).
          if (isNewOrder && answer.statusCode === 201) orders.push(identifiersOf(body));
          if (target !== upstream.pathname || answer.statusCode !== 200) {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            return;
          }
          // The directory: Pebble's, with `meta` added.
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            const directory = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              newOrder?: string;
              meta?: Record<string, unknown>;
            };
            directory.meta = { ...directory.meta, ...meta };
            if (directory.newOrder) newOrderPath = new URL(directory.newOrder).pathname;
            const body = JSON.stringify(directory);
            const { 'content-length': _length, ...headers } = answer.headers;
            res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(body) });
            res.end(body);
          });
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`front: ${error.message}`);
      });
      forward.end(body);
    },
  );
  let down = false;
  server.on('connection', (socket) => {
    if (down) socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    directoryUrl: `https://127.0.0.1:${port}${upstream.pathname}`,
    caFile: tls.caFile,
    requests,
    orders,
    ordersFor: (hostname) => orders.filter((names) => names.includes(hostname)).length,
    outage: (on) => {
      down = on;
      if (on) server.closeAllConnections();
    },
    close: async () => {
      server.closeAllConnections();
      server.close();
      agent.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The names a newOrder request asks for: its JWS payload's `identifiers`. */
function identifiersOf(body: Buffer): string[] {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload: string };
    const order = JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as {
      identifiers?: { value: string }[];
    };
    return (order.identifiers ?? []).map((identifier) => identifier.value);
  } catch {
    // Not a JWS: Pebble refuses it; the front only records what it can read.
    return [];
  }
}
