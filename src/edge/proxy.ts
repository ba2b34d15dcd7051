import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from '../logger.js';
import { guardedConnector } from '../net/guarded-connector.js';
import { type PageStatus, rawPage, rawResponse, sendPage } from './responses.js';
import type { Scheme } from './router.js';

/**
 * The streaming reverse proxy: one request from a client, one to the App's origin, bodies relayed
 * chunk by chunk with backpressure both ways, so a 50 MB upload or download costs a few socket
 * buffers, never its size.
 *
 * Built on undici's dispatcher API, not `node:http`: its connection pools keep origin connections
 * alive per origin and it hands the response to a handler with no stream objects in between, which
 * is the fastest way Node has to relay a response. One `Agent` holds a pool per origin and drops a
 * pool once its connections have closed, so the number of Apps does not pin memory.
 *
 * What the origin sees:
 * - `Host` is the origin's own host (`origin_url`'s host and port), as if the App were called
 *   directly: origins behind their own TLS or virtual hosting (a PaaS, a bucket, a CDN) answer only
 *   to their own name. The name the visitor used is in `X-Forwarded-Host` and `Forwarded: host=`.
 * - Hop-by-hop headers are dropped both ways (RFC 9110 §7.6.1): `Connection` and the headers it
 *   lists, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`; and `Expect`
 *   (Node has already answered `100 Continue` to the client).
 * - `X-Forwarded-For` and `Forwarded` (RFC 7239) get the client's address appended, so an origin
 *   should trust only the last element (the one the edge added). `X-Forwarded-Proto` and
 *   `X-Forwarded-Host` are set by the edge, replacing whatever the client sent: the edge
 *   terminated TLS and saw the Host, a client's claim about either is worthless.
 * - The path is `origin_url`'s path (without its trailing slash) followed by the request target;
 *   a query in `origin_url` is not used.
 * - HTTPS origins have their certificate verified against the system's CAs, as any client would.
 *
 * Unless private origins are allowed, every address the edge connects to is checked with
 * `isPrivateAddress` at connect time, after DNS resolution: an origin name that resolves (or is
 * re-pointed, DNS rebinding) to loopback or an internal network is refused with 502, so a tenant
 * cannot make the edge reach the platform's own services.
 *
 * Errors before the response started become a neutral 502 (refused, reset, unresolvable, private,
 * TLS failure) or 504 (connect or idle timeout). After it started, the client connection is cut so
 * a truncated body never passes for a complete one.
 */

export interface ProxyOptions {
  allowPrivateOrigins: boolean;
  /** Longest wait for a TCP (and TLS) connection to an origin, DNS included, in ms. */
  connectTimeoutMs: number;
  /** Longest silence from an origin, for the response head and between body chunks, in ms. */
  idleTimeoutMs: number;
  /** Largest origin response head accepted, in bytes. Default: Node's (16 KiB). */
  maxHeaderSize?: number;
  logger: Logger;
}

/** An App's origin, parsed once when its route is loaded (see `parseOrigin`). */
export interface ProxyOrigin {
  /** `scheme://host[:port]`: also the key of its connection pool. */
  readonly origin: string;
  /** `origin_url`'s path without its trailing slash (`''` for `/`), prefixed to request targets. */
  readonly pathPrefix: string;
}

/** Parses an `origin_url`; `undefined` unless it is an absolute http(s) URL without credentials. */
export function parseOrigin(originUrl: string): ProxyOrigin | undefined {
  let url: URL;
  try {
    url = new URL(originUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return { origin: url.origin, pathPrefix: url.pathname.replace(/\/+$/, '') };
}

/** Why the edge gave up on a request itself (the client left): never answered, logged at debug. */
class ClientGoneError extends Error {
  readonly code = 'PORTICO_CLIENT_GONE';
}

export class ReverseProxy {
  private readonly agent: Agent;
  private readonly logger: Logger;

  constructor(options: ProxyOptions) {
    this.logger = options.logger;
    this.agent = new Agent({
      connect: guardedConnector({
        timeoutMs: options.connectTimeoutMs,
        allowPrivate: options.allowPrivateOrigins,
      }),
      headersTimeout: options.idleTimeoutMs,
      bodyTimeout: options.idleTimeoutMs,
      maxHeaderSize: options.maxHeaderSize,
    });
  }

  /** Relays one request; `target` is the request target as received (a path, with its query). */
  forward(req: IncomingMessage, res: ServerResponse, origin: ProxyOrigin, target: string): void {
    const headers = req.headers;
    const contentLength = headers['content-length'];
    // A request has a body only if it says so (RFC 9112 §6.3); passing `req` otherwise would make
    // undici send an empty chunked body with every GET.
    const hasBody =
      headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength !== '0');
    this.agent.dispatch(
      {
        origin: origin.origin,
        path: origin.pathPrefix + target,
        method: req.method ?? 'GET',
        headers: originRequestHeaders(req),
        body: hasBody ? req : null,
      },
      new ResponseRelay(res, origin, this.logger),
    );
  }

  /**
   * Relays a request that asks for an upgrade (WebSocket). On `101` the two sockets are piped
   * together raw until either side closes; any other answer is relayed as a response and the
   * socket closed. `head` is what the client sent after the request head, if anything.
   */
  forwardUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    origin: ProxyOrigin,
    target: string,
  ): void {
    this.agent.dispatch(
      {
        origin: origin.origin,
        path: origin.pathPrefix + target,
        method: req.method ?? 'GET',
        headers: originRequestHeaders(req),
        upgrade: req.headers.upgrade ?? 'websocket',
        body: null,
      },
      new UpgradeRelay(socket, head, origin, this.logger),
    );
  }

  /** Closes every origin connection now (the edge calls it once nothing is in flight). */
  destroy(): Promise<void> {
    return this.agent.destroy();
  }
}

/**
 * Relays an origin's response to a client. Subclasses say how a head is written and how an error
 * is answered; the body path (write, pause on backpressure, resume on drain) is shared.
 */
abstract class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private done = false;
  protected headWritten = false;

  constructor(
    protected readonly out: Writable,
    protected readonly origin: ProxyOrigin,
    protected readonly logger: Logger,
  ) {
    out.once('close', this.onClientClose);
  }

  protected abstract writeHead(statusCode: number, headers: string[]): void;
  protected abstract answerError(status: PageStatus): void;

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The client may have left while the origin connection was being made.
    if (this.out.destroyed) controller.abort(new ClientGoneError('client closed the connection'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // Interim responses (103 Early Hints) are not relayed; the final one follows.
    if (statusCode < 200) return;
    this.writeHead(statusCode, clientResponseHeaders(headers));
    this.headWritten = true;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.out.write(chunk)) {
      controller.pause();
      this.out.once('drain', this.resume);
    }
  }

  onResponseEnd(): void {
    this.done = true;
    this.out.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.done = true;
    if (error instanceof ClientGoneError || this.out.destroyed) {
      this.logger.debug({ origin: this.origin.origin, err: error }, 'edge: client left before the response');
      return;
    }
    const status = gatewayStatus(error);
    this.logger.warn(
      { origin: this.origin.origin, status, code: errorCode(error), err: error },
      'edge: origin request failed',
    );
    if (this.headWritten) this.out.destroy();
    else this.answerError(status);
  }

  protected finish(): void {
    this.done = true;
  }

  private readonly resume = (): void => {
    this.controller?.resume();
  };

  private readonly onClientClose = (): void => {
    if (!this.done) this.controller?.abort(new ClientGoneError('client closed the connection'));
  };
}

class ResponseRelay extends Relay {
  constructor(
    private readonly res: ServerResponse,
    origin: ProxyOrigin,
    logger: Logger,
  ) {
    super(res, origin, logger);
  }

  protected writeHead(statusCode: number, headers: string[]): void {
    // Node's own reason phrase: HTTP/2 has none and an origin's may carry anything.
    this.res.writeHead(statusCode, headers);
  }

  protected answerError(status: PageStatus): void {
    sendPage(this.res, status);
  }
}

class UpgradeRelay extends Relay {
  constructor(
    private readonly socket: Duplex,
    private readonly head: Buffer,
    origin: ProxyOrigin,
    logger: Logger,
  ) {
    super(socket, origin, logger);
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    originSocket: Duplex,
  ): void {
    this.finish();
    const client = this.socket;
    const closeBoth = (): void => {
      client.destroy();
      originSocket.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    originSocket.on('error', closeBoth).on('close', closeBoth);
    if (client.destroyed) {
      closeBoth();
      return;
    }
    // The 101 carries the origin's Upgrade, Connection and Sec-WebSocket-* headers untouched: they
    // are the handshake itself.
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (typeof value === 'string') head += `${name}: ${value}\r\n`;
      else for (const item of value) head += `${name}: ${item}\r\n`;
    }
    client.write(`${head}\r\n`, 'latin1');
    if (this.head.length > 0) originSocket.write(this.head);

    // No idle timeout on a tunnel (a WebSocket may stay quiet for minutes; Node drops the server's
    // timeout handling once a socket is upgraded): TCP keep-alive finds dead peers.
    originSocket.pipe(client);
    client.pipe(originSocket);
  }

  protected writeHead(statusCode: number, headers: string[]): void {
    // The origin declined the upgrade: relay its answer, then close (the body is delimited by the
    // close when the origin gave no length).
    this.socket.write(rawResponse(statusCode, headers));
  }

  protected answerError(status: PageStatus): void {
    this.socket.end(rawPage(status));
  }
}

/** Always dropped, whatever `Connection` says (RFC 9110 §7.6.1, RFC 9112 §9.6). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Dropped from requests because the edge sets them itself (or, for `expect`, already answered). */
const SET_BY_EDGE = new Set([
  'host',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
]);

/** tchar (RFC 9110 §5.6.2): a Forwarded value made only of these needs no quotes. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isHopByHop(name: string, listed: string[] | undefined): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed?.includes(name) === true;
}

/** The extra header names a `Connection` header lists, lowercased; `undefined` when none. */
function connectionOptions(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const joined = typeof value === 'string' ? value : value.join(',');
  // What nearly every client sends: nothing to parse.
  if (joined === 'keep-alive' || joined === 'close') return undefined;
  const names: string[] = [];
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && !HOP_BY_HOP.has(name)) names.push(name);
  }
  return names.length > 0 ? names : undefined;
}

function pushHeader(out: string[], name: string, value: string | string[] | undefined): void {
  if (value === undefined) return;
  if (typeof value === 'string') out.push(name, value);
  else for (const item of value) out.push(name, item);
}

/**
 * The headers sent to the origin, as the flat name, value list undici takes. Built from Node's
 * parsed `req.headers` (lowercase names; repeated fields already joined as RFC 9110 §5.3 allows).
 */
export function originRequestHeaders(req: IncomingMessage): string[] {
  const headers = req.headers;
  // How Node tells a request that arrived over TLS (`socket.encrypted`, set on TLS sockets only).
  const scheme: Scheme = 'encrypted' in req.socket ? 'https' : 'http';
  const listed = connectionOptions(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (isHopByHop(name, listed) || SET_BY_EDGE.has(name)) continue;
    pushHeader(out, name, headers[name]);
  }
  const client = clientAddress(req.socket.remoteAddress);
  const host = headers.host;
  out.push('x-forwarded-for', appendToList(headers['x-forwarded-for'], client), 'x-forwarded-proto', scheme);
  if (host !== undefined) out.push('x-forwarded-host', host);
  const node = client.includes(':') ? `"[${client}]"` : client;
  const element =
    host === undefined ? `for=${node};proto=${scheme}` : `for=${node};host=${quoted(host)};proto=${scheme}`;
  out.push('forwarded', appendToList(headers.forwarded, element));
  return out;
}

/** The origin's response headers as the client gets them, as a flat list for `writeHead`. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): string[] {
  const listed = connectionOptions(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (!isHopByHop(name, listed)) pushHeader(out, name, headers[name]);
  }
  return out;
}

function appendToList(existing: string | string[] | undefined, item: string): string {
  if (existing === undefined || existing === '') return item;
  return `${typeof existing === 'string' ? existing : existing.join(', ')}, ${item}`;
}

/** The client's address as the origin should read it: IPv4 clients of a dual-stack socket unmapped. */
function clientAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function quoted(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function errorCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

function gatewayStatus(error: Error): 502 | 504 {
  const code = errorCode(error);
  return code !== undefined && TIMEOUT_CODES.has(code) ? 504 : 502;
}
