import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from '../logger.js';
import { guardedConnector } from '../net/guarded-connector.js';
import { type PageStatus, rawPage, rawResponse, sendPage } from './responses.js';
import type { Authority, Scheme } from './router.js';
import { type CookieScope, scopeSetCookies } from './set-cookie.js';

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
 * - The edge is the first hop: nothing before it is trusted, so what a client claims about the
 *   request is dropped and the edge says it instead (docs/security.md, "What the edge forwards").
 *   `X-Forwarded-For` gets the client's address appended (an origin trusts only elements from the
 *   right that proxies it knows added; the last is the edge's). `Forwarded` (RFC 7239) is replaced
 *   by the edge's own element: frameworks read its `host=` and `proto=` from the first element,
 *   which would otherwise be the client's. `X-Forwarded-Host` (the routed name, with the port
 *   only when it is not the scheme's default), `X-Forwarded-Port` and `X-Forwarded-Proto` are set
 *   by the edge; every other `X-Forwarded-*`, `X-Real-IP`, `X-Original-URL` and `X-Rewrite-URL`
 *   from a client is dropped (servers and frameworks take those as the client's address or the
 *   URL asked for).
 * - The path is `origin_url`'s path (without its trailing slash) followed by the request target;
 *   a query in `origin_url` is not used.
 * - HTTPS origins have their certificate verified against the system's CAs, as any client would.
 *
 * What the client sees: the origin's response, hop-by-hop headers dropped, and each `Set-Cookie`
 * kept to the name the request was for (`set-cookie.ts`): one App cannot set cookies for another.
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
  /** `PORTICO_APPS_DOMAIN`, normalized: cookies for it or above it are never relayed (`set-cookie.ts`). */
  appsDomain: string;
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
  private readonly appsDomain: string;

  constructor(options: ProxyOptions) {
    this.logger = options.logger;
    this.appsDomain = options.appsDomain;
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

  /**
   * Relays one request; `target` is the request target as received (a path, with its query),
   * `authority` the name it was routed on with the Host header's port.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    origin: ProxyOrigin,
    target: string,
    authority: Authority,
  ): void {
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
        headers: originRequestHeaders(req, authority),
        body: hasBody ? req : null,
      },
      new ResponseRelay(res, origin, this.scope(authority), this.logger),
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
    authority: Authority,
  ): void {
    this.agent.dispatch(
      {
        origin: origin.origin,
        path: origin.pathPrefix + target,
        method: req.method ?? 'GET',
        headers: originRequestHeaders(req, authority),
        upgrade: req.headers.upgrade ?? 'websocket',
        body: null,
      },
      new UpgradeRelay(socket, head, origin, this.scope(authority), this.logger),
    );
  }

  private scope(authority: Authority): CookieScope {
    return { hostname: authority.hostname, appsDomain: this.appsDomain };
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
    protected readonly cookies: CookieScope,
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
    this.writeHead(statusCode, clientResponseHeaders(headers, this.cookies));
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
    cookies: CookieScope,
    logger: Logger,
  ) {
    super(res, origin, cookies, logger);
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
    cookies: CookieScope,
    logger: Logger,
  ) {
    super(socket, origin, cookies, logger);
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
    // are the handshake itself. Browsers store cookies set by a handshake too: those are scoped.
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    for (const name in headers) {
      let value = headers[name];
      if (value === undefined) continue;
      if (name === 'set-cookie') value = scopeSetCookies(value, this.cookies);
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

/**
 * Dropped from requests because the edge sets them itself (or, for `expect`, already answered), or
 * because they claim what only the edge knows: the client's address (`x-real-ip`, set by nginx and
 * trusted by apps behind it) or the URL asked for (`x-original-url`, `x-rewrite-url`, honoured by
 * IIS rewrites and some frameworks as the real path). Every `x-forwarded-*` is dropped too.
 */
const SET_BY_EDGE = new Set(['host', 'expect', 'forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url']);
const X_FORWARDED = 'x-forwarded-';

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
 * parsed `req.headers` (lowercase names; repeated fields already joined as RFC 9110 §5.3 allows);
 * `authority` is the name the request was routed on and the Host header's port (`router.ts`), so
 * what the origin reads as the host is normalized and checked, never the client's bytes.
 */
export function originRequestHeaders(req: IncomingMessage, authority: Authority): string[] {
  const headers = req.headers;
  // How Node tells a request that arrived over TLS (`socket.encrypted`, set on TLS sockets only).
  const scheme: Scheme = 'encrypted' in req.socket ? 'https' : 'http';
  const listed = connectionOptions(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (isHopByHop(name, listed) || SET_BY_EDGE.has(name) || name.startsWith(X_FORWARDED)) continue;
    pushHeader(out, name, headers[name]);
  }
  const client = clientAddress(req.socket.remoteAddress);
  const defaultPort = scheme === 'https' ? 443 : 80;
  const port = authority.port ?? defaultPort;
  // The port is in the host only when it is not the scheme's default, as a browser's address bar
  // shows it: origins build absolute URLs from this header (the port alone is X-Forwarded-Port).
  const host = port === defaultPort ? authority.hostname : `${authority.hostname}:${port}`;
  out.push(
    'x-forwarded-for',
    appendToList(headers['x-forwarded-for'], client),
    'x-forwarded-proto',
    scheme,
    'x-forwarded-host',
    host,
    'x-forwarded-port',
    String(port),
  );
  const node = client.includes(':') ? `"[${client}]"` : client;
  out.push('forwarded', `for=${node};host=${quoted(host)};proto=${scheme}`);
  return out;
}

/**
 * The origin's response headers as the client gets them, as a flat list for `writeHead`; cookies
 * kept to `cookies.hostname` (`set-cookie.ts`).
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders, cookies: CookieScope): string[] {
  const listed = connectionOptions(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (isHopByHop(name, listed)) continue;
    const value = headers[name];
    pushHeader(
      out,
      name,
      name === 'set-cookie' && value !== undefined ? scopeSetCookies(value, cookies) : value,
    );
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
