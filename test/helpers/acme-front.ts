/**
 * A test double in front of a real Pebble: an HTTPS reverse proxy that passes every ACME request
 * through unchanged, except that it adds to the directory's `meta` what Pebble 2.4 does not have
 * (`caaIdentities`), and records each request, so a test can tell what reached the CA. It can also
 * play an outage (`outage(true)`: every connection is cut), which stopping Pebble cannot: Pebble
 * keeps its state in memory, and a restarted one knows none of the certificates it issued.
 *
 * With `renewalInfo`, it also plays ACME Renewal Information (RFC 9773), which Pebble 2.4 lacks: the
 * directory gets a `renewalInfo` URL on the front, answered from the windows the test sets
 * (`setRenewalWindow`), 404 for any other certificate. Pebble ignores the fields of a new order it
 * does not know (`profile`, `replaces`), so the front records each order's payload for the test to
 * check what was asked. It can refuse new orders as a CA does under load (`refuseOrders(429)`).
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
  /** The JWS payload of each order the CA created, in order (`identifiers`, `profile`, `replaces`). */
  readonly orderPayloads: Record<string, unknown>[];
  /** The certIDs of every renewalInfo request, in order. */
  readonly renewalInfoRequests: string[];
  /** How many orders for `hostname` reached the CA. */
  ordersFor(hostname: string): number;
  /**
   * The window answered for `certId` (and its Retry-After, in seconds), or none (404) when
   * `window` is undefined; `*` sets the answer for every certificate without one of its own.
   * Needs `renewalInfo` at start.
   */
  setRenewalWindow(certId: string, window?: { start: Date; end: Date; retryAfterSeconds?: number }): void;
  /**
   * While set, new orders are refused with this HTTP status (429: `rateLimited`, 5xx:
   * `serverInternal`) and a Retry-After of `retryAfterSeconds`; undefined lets them through again.
   */
  refuseOrders(status: number | undefined, retryAfterSeconds?: number): void;
  /** While set, renewalInfo requests are answered with this HTTP status (a CA's ARI failing). */
  refuseRenewalInfo(status: number | undefined): void;
  /** While on, the CA is unreachable: connections are closed as soon as they are made. */
  outage(on: boolean): void;
  close(): Promise<void>;
}

/**
 * Starts a front for `pebble` whose directory's `meta` has `meta` added to it, and a `renewalInfo`
 * resource when `options.renewalInfo` is set.
 */
export async function startAcmeFront(
  pebble: Pebble,
  meta: Record<string, unknown>,
  options: { renewalInfo?: boolean } = {},
): Promise<AcmeFront> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portico-acme-front-'));
  const tls = await createLocalhostTls(dir);
  const upstream = new URL(pebble.directoryUrl);
  const agent = new https.Agent({ ca: pebble.caPem, keepAlive: true });
  const requests: { method: string; path: string }[] = [];
  const orders: string[][] = [];
  const orderPayloads: Record<string, unknown>[] = [];
  const renewalInfoRequests: string[] = [];
  const windows = new Map<string, { start: Date; end: Date; retryAfterSeconds?: number }>();
  let refusal: { status: number; retryAfterSeconds?: number } | undefined;
  let renewalInfoRefusal: number | undefined;
  let newOrderPath: string | undefined;
  const RENEWAL_INFO_PATH = '/front/renewal-info/';

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
      if (method === 'GET' && target.startsWith(RENEWAL_INFO_PATH)) {
        const certId = decodeURIComponent(target.slice(RENEWAL_INFO_PATH.length));
        renewalInfoRequests.push(certId);
        if (renewalInfoRefusal !== undefined) {
          res.writeHead(renewalInfoRefusal, { 'content-type': 'application/problem+json' });
          res.end(
            JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'front: refused' }),
          );
          return;
        }
        const window = windows.get(certId) ?? windows.get('*');
        if (window === undefined) {
          res.writeHead(404, { 'content-type': 'application/problem+json' });
          res.end(
            JSON.stringify({ type: 'urn:ietf:params:acme:error:malformed', detail: 'no such certificate' }),
          );
          return;
        }
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (window.retryAfterSeconds !== undefined) headers['retry-after'] = String(window.retryAfterSeconds);
        res.writeHead(200, headers);
        res.end(
          JSON.stringify({
            suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() },
          }),
        );
        return;
      }
      if (isNewOrder && refusal !== undefined) {
        const type = refusal.status === 429 ? 'rateLimited' : 'serverInternal';
        const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
        if (refusal.retryAfterSeconds !== undefined)
          headers['retry-after'] = String(refusal.retryAfterSeconds);
        res.writeHead(refusal.status, headers);
        res.end(
          JSON.stringify({
            type: `urn:ietf:params:acme:error:${type}`,
            detail: `front: refused (${refusal.status})`,
          }),
        );
        return;
      }
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
          if (isNewOrder && answer.statusCode === 201) {
            orders.push(identifiersOf(body));
            orderPayloads.push(payloadOf(body));
          }
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
            if (options.renewalInfo) {
              (directory as Record<string, unknown>).renewalInfo =
                `https://${req.headers.host}${RENEWAL_INFO_PATH.slice(0, -1)}`;
            }
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
    orderPayloads,
    renewalInfoRequests,
    ordersFor: (hostname) => orders.filter((names) => names.includes(hostname)).length,
    setRenewalWindow: (certId, window) => {
      if (window === undefined) windows.delete(certId);
      else windows.set(certId, window);
    },
    refuseRenewalInfo: (status) => {
      renewalInfoRefusal = status;
    },
    refuseOrders: (status, retryAfterSeconds) => {
      refusal = status === undefined ? undefined : { status, retryAfterSeconds };
    },
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
  const identifiers = payloadOf(body).identifiers as { value: string }[] | undefined;
  return (identifiers ?? []).map((identifier) => identifier.value);
}

/** A JWS request's payload, decoded; empty when it is no JWS (Pebble refuses it; the front records what it can read). */
function payloadOf(body: Buffer): Record<string, unknown> {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload: string };
    return JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}
